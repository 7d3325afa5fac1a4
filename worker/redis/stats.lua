-- Depth of one canonical queue: {ready, delayed, in flight, dead}. In flight sums every known worker's ack
-- set for the queue, so it counts Python and Troupe workers alike. Read-only.
-- KEYS[1] = namespace. ARGV = canonical queue name.
local ns = KEYS[1]
local q = ARGV[1]
local in_flight = 0
for _, worker in ipairs(redis.call("zrange", ns .. ":__heartbeats__", 0, -1)) do
  in_flight = in_flight + redis.call("scard", ns .. ":__acks__." .. worker .. "." .. q)
end
return {
  redis.call("llen", ns .. ":" .. q),
  redis.call("hlen", ns .. ":" .. q .. ".DQ.msgs"),
  in_flight,
  redis.call("zcard", ns .. ":" .. q .. ".XQ"),
}
