-- Move a due delayed message from `q.DQ` to `q` in one step: Dramatiq's enqueue-then-ack can duplicate it
-- on a crash in between. Nothing happens unless this worker still owns the delay-queue delivery.
-- KEYS[1] = namespace. ARGV = now, delay_queue_name, worker_id, old_id, new_id, new_body.
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
local queue = ns .. ":" .. canonical
redis.call("hset", queue .. ".msgs", ARGV[5], ARGV[6])
if redis.call("rpush", queue, ARGV[5]) == 1 then
  redis.call("publish", ns .. ":__wake__." .. canonical, "")
end
return 1
