-- Publish messages onto one queue, with Dramatiq's effects: the body goes into `ns:<queue>.msgs` under its
-- redis_message_id, then the id is appended to the list `ns:<queue>`.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, then (redis_message_id, body) pairs.
-- HSETNX makes a resent publication (a reply lost on a reconnect) a no-op instead of a duplicate list entry.
-- @include push-ids

local ns = KEYS[1]
local msgs = ns .. ":" .. ARGV[2] .. ".msgs"
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

local fresh = {}
for i = 4, #ARGV, 2 do
  if redis.call("hsetnx", msgs, ARGV[i], ARGV[i + 1]) == 1 then
    fresh[#fresh + 1] = ARGV[i]
  end
end
return push_ids(ns, ARGV[2], fresh)
