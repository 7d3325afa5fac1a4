-- Publish messages onto one queue, with Dramatiq's effects: the body goes into `ns:<queue>.msgs` under its
-- redis_message_id, then the id is appended to the list `ns:<queue>`.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, then (redis_message_id, body) pairs.
-- HSETNX makes a resent publication (a reply lost on a reconnect) a no-op instead of a duplicate list entry.
local ns = KEYS[1]
local queue = ns .. ":" .. ARGV[2]
local msgs = queue .. ".msgs"
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

local pushed, length = 0, 0
for i = 4, #ARGV, 2 do
  if redis.call("hsetnx", msgs, ARGV[i], ARGV[i + 1]) == 1 then
    length = redis.call("rpush", queue, ARGV[i])
    pushed = pushed + 1
  end
end
-- Sleeping Troupe consumers only need waking when the queue goes from empty to non-empty.
if pushed > 0 and length == pushed then
  redis.call("publish", ns .. ":__wake__." .. ARGV[2], "")
end
return pushed
