-- Delayed messages of one canonical queue by eta, for the autoscaler: how many come due by a deadline, and how
-- many have no eta it can read. One HSCAN page of `ns:<queue>.DQ.msgs` per call, so a delay queue of any size never
-- blocks the server for long; the caller loops on the cursor. The hash holds every delayed message, waiting in the
-- `.DQ` list or held by a worker until its eta. Read-only.
-- KEYS[1] = namespace. ARGV = canonical queue name, deadline (ms since the epoch), cursor, page size.
-- Returns {next cursor ("0" when done), due by the deadline, no readable eta, the earliest eta after the deadline
-- (-1: none on this page)}.
local msgs = KEYS[1] .. ":" .. ARGV[1] .. ".DQ.msgs"
local deadline = tonumber(ARGV[2])
local page = redis.call("hscan", msgs, ARGV[3], "COUNT", ARGV[4])
local entries = page[2]
local due, unknown, later = 0, 0, -1
for i = 2, #entries, 2 do
  local ok, message = pcall(cjson.decode, entries[i])
  local eta = ok and type(message) == "table" and type(message.options) == "table" and tonumber(message.options.eta) or nil
  if eta == nil then
    unknown = unknown + 1
  elseif eta <= deadline then
    due = due + 1
  elseif later < 0 or eta < later then
    later = eta
  end
end
return {page[1], due, unknown, later}
