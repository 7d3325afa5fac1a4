-- Move a due delayed message from `q.DQ` to `q` in one step: Dramatiq's enqueue-then-ack can duplicate it
-- on a crash in between. Nothing happens unless this worker still owns the delay-queue delivery.
-- KEYS[1] = namespace. ARGV = now, delay_queue_name, worker_id, old_id, new_id, new_body.
-- @include push-ids

local ns = KEYS[1]
local dq = ARGV[2]
local canonical = string.gsub(dq, "%.DQ$", "")
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

if redis.call("srem", ns .. ":__acks__." .. ARGV[3] .. "." .. dq, ARGV[4]) == 0 then
  return 0
end
if redis.call("hdel", ns .. ":" .. dq .. ".msgs", ARGV[4]) == 0 then
  return 0
end
redis.call("hset", ns .. ":" .. canonical .. ".msgs", ARGV[5], ARGV[6])
return push_ids(ns, canonical, {ARGV[5]})
