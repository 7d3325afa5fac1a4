-- Give deliveries back: each id this worker owns and whose body still exists goes to the tail of its queue.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, ids...
local ns = KEYS[1]
local queue = ns .. ":" .. ARGV[2]
local msgs = queue .. ".msgs"
local acks = ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2]
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

local pushed, length = 0, 0
for i = 4, #ARGV do
  if redis.call("srem", acks, ARGV[i]) == 1 and redis.call("hexists", msgs, ARGV[i]) == 1 then
    length = redis.call("rpush", queue, ARGV[i])
    pushed = pushed + 1
  end
end
if pushed > 0 and length == pushed then
  redis.call("publish", ns .. ":__wake__." .. ARGV[2], "")
end
return pushed
