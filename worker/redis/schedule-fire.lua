-- Fire one tick of a schedule on a Redis broker at most once, whoever asks: elect the caller for the tick and, in
-- the same atomic step, record the tick as the schedule's last and publish the message with Dramatiq's effects, so
-- that no crash can separate the election from the enqueue. (A broker that publishes elsewhere, RabbitMQ, elects
-- in two phases instead: schedule-claim.lua, then schedule-commit.lua after the publish is confirmed.)
-- KEYS[1] = namespace. ARGV = now, schedule name, tick (epoch ms), election ttl (ms), queue_name, fired_by,
-- record (JSON with "tick", kept in the hash `ns:schedules` under the schedule's name), redis_message_id, body.
-- Returns {1 if elected, 0 if not, 2 if elected while the schedule is paused; the previous tick or -1}. A tick at
-- or before the recorded one is refused even after its election key expired, so a late or resent call never
-- fires twice. A paused schedule (its name in the hash `ns:schedules.paused`, set by `troupe schedules pause`)
-- fires nothing: its elected tick is kept in `ns:schedules.skipped` instead, so that a paused tick is not fired
-- late after a resume and the ticks it skipped on purpose are not counted as misfires.
-- @include push-ids
-- @include schedule-previous

local ns = KEYS[1]
local name = ARGV[2]
local tick = tonumber(ARGV[3])
local previous = schedule_previous(ns, name)
if previous >= tick then
  return {0, previous}
end
if not redis.call("set", ns .. ":schedule:" .. name .. ":" .. ARGV[3], ARGV[6], "NX", "PX", ARGV[4]) then
  return {0, previous}
end
if redis.call("hexists", ns .. ":schedules.paused", name) == 1 then
  redis.call("hset", ns .. ":schedules.skipped", name, ARGV[3])
  return {2, previous}
end
redis.call("hset", ns .. ":schedules", name, ARGV[7])
if redis.call("hsetnx", ns .. ":" .. ARGV[5] .. ".msgs", ARGV[8], ARGV[9]) == 1 then
  push_ids(ns, ARGV[5], {ARGV[8]})
end
return {1, previous}
