-- Dramatiq's RedisBackend incr/decr in one atomic step instead of a WATCH/MULTI retry loop (same effects):
-- add ARGV[1] (may be negative) to the integer at KEYS[1] unless the result passes the bound, then
-- SET it with PX ttl. ARGV = amount, bound, ttl, "max" (fail when above) or "min" (fail when below).
local value = tonumber(redis.call("get", KEYS[1]) or "0") + tonumber(ARGV[1])
local bound = tonumber(ARGV[2])
if (ARGV[4] == "max" and value > bound) or (ARGV[4] == "min" and value < bound) then
  return 0
end
redis.call("set", KEYS[1], string.format("%d", value), "PX", ARGV[3])
return 1
