-- Ack deliveries: drop each id from this worker's ack set and, only if it was there, its body.
-- (An id this worker no longer owns was recovered by someone else; its data must stay.)
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, ids...
local ns = KEYS[1]
local msgs = ns .. ":" .. ARGV[2] .. ".msgs"
local acks = ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2]
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

for i = 4, #ARGV do
  if redis.call("srem", acks, ARGV[i]) == 1 then
    redis.call("hdel", msgs, ARGV[i])
  end
end
return 0
