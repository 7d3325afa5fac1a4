-- Dramatiq's RedisBackend incr_and_sum in one atomic step: add ARGV[1] to KEYS[1] unless that value, or
-- amount plus the sum of the window keys KEYS[2..], exceeds ARGV[2]; the new value is SET with PX ttl.
-- ARGV = amount, maximum, ttl.
local amount = tonumber(ARGV[1])
local maximum = tonumber(ARGV[2])
local value = tonumber(redis.call("get", KEYS[1]) or "0") + amount
if value > maximum then
  return 0
end
local total = amount
if #KEYS > 1 then
  for _, v in ipairs(redis.call("mget", unpack(KEYS, 2))) do
    if v then
      total = total + tonumber(v)
    end
  end
end
if total > maximum then
  return 0
end
redis.call("set", KEYS[1], string.format("%d", value), "PX", ARGV[3])
return 1
