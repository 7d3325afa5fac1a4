-- Fire one tick of a schedule at most once, whoever asks: elect the caller for the tick and, in the same atomic
-- step, record the tick as the schedule's last and (on a Redis broker) publish the message with Dramatiq's
-- effects, so that no crash can separate the election from the enqueue.
-- KEYS[1] = namespace. ARGV = now, schedule name, tick (epoch ms), election ttl (ms), queue_name, fired_by,
-- record (JSON with "tick", kept in the hash `ns:schedules` under the schedule's name), then either nothing
-- (claim only: the caller publishes elsewhere, e.g. on RabbitMQ) or redis_message_id and body.
-- Returns {1 if elected else 0, the previously recorded tick or -1}. A tick at or before the recorded one is
-- refused even after its election key expired, so a late or resent call never fires twice.
-- @include push-ids

local ns = KEYS[1]
local name = ARGV[2]
local tick = tonumber(ARGV[3])
local records = ns .. ":schedules"

local previous = -1
local recorded = redis.call("hget", records, name)
if recorded then
  previous = tonumber(cjson.decode(recorded).tick) or -1
end
if previous >= tick then
  return {0, previous}
end
if not redis.call("set", ns .. ":schedule:" .. name .. ":" .. ARGV[3], ARGV[6], "NX", "PX", ARGV[4]) then
  return {0, previous}
end
redis.call("hset", records, name, ARGV[7])
if #ARGV >= 9 then
  if redis.call("hsetnx", ns .. ":" .. ARGV[5] .. ".msgs", ARGV[8], ARGV[9]) == 1 then
    push_ids(ns, ARGV[5], {ARGV[8]})
  end
end
return {1, previous}
