-- Delete dead letters by id: each id leaves `ns:<q>.XQ`, `.XQ.msgs` and its reason together.
-- KEYS[1] = namespace. ARGV = canonical queue name, then ids.
-- Returns the number of letters deleted.
-- @include dead-letter-reasons
local xq = KEYS[1] .. ":" .. ARGV[1] .. ".XQ"
local deleted = 0
for i = 2, #ARGV do
  deleted = deleted + redis.call("hdel", xq .. ".msgs", ARGV[i])
  redis.call("zrem", xq, ARGV[i])
  forget_reasons(xq, { ARGV[i] })
end
return deleted
