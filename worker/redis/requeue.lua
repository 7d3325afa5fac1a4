-- Give deliveries back: each id this worker owns and whose body still exists goes to the tail of its queue.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, ids...
-- @include push-ids

local ns = KEYS[1]
local msgs = ns .. ":" .. ARGV[2] .. ".msgs"
local acks = ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2]
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

local back = {}
for i = 4, #ARGV do
  if redis.call("srem", acks, ARGV[i]) == 1 and redis.call("hexists", msgs, ARGV[i]) == 1 then
    back[#back + 1] = ARGV[i]
  end
end
return push_ids(ns, ARGV[2], back)
