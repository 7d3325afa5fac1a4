-- Dead-letter deliveries into `ns:<canonical>.XQ` (score = now) and `.XQ.msgs`, as Dramatiq does, keeping
-- the stored body. A non-empty reason is kept beside it (see dead-letter-reasons), where Python peers ignore it.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, dead_message_ttl, then (id, reason) pairs.
-- @include dead-letter-reasons
local ns = KEYS[1]
local msgs = ns .. ":" .. ARGV[2] .. ".msgs"
local acks = ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2]
local xq = ns .. ":" .. string.gsub(ARGV[2], "%.DQ$", "") .. ".XQ"
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call("srem", acks, id) == 1 then
    local body = redis.call("hget", msgs, id)
    if body then
      redis.call("zadd", xq, ARGV[1], id)
      redis.call("hset", xq .. ".msgs", id, body)
      redis.call("hdel", msgs, id)
      if ARGV[i + 1] ~= "" then
        keep_reason(xq, id, ARGV[i + 1], ARGV[1], tonumber(ARGV[4]))
      end
    end
  end
end
return 0
