-- Phase two of a tick's election on a broker that publishes elsewhere (RabbitMQ): the holder of the tick's claim
-- (schedule-claim.lua), its publish confirmed, marks the tick committed — no process takes it over any more — and
-- records it as the schedule's last fired tick unless a later one is recorded already (the record is monotone).
-- KEYS[1] = namespace. ARGV = schedule name, tick (epoch ms), committer, record (JSON with "tick", kept in the hash
-- `ns:schedules` under the schedule's name).
-- Returns 1 when this call committed the tick, 0 when it was committed already: a holder whose lease lapsed while it
-- was still publishing was taken over, and the tick was published twice (with one message_id).
local ns = KEYS[1]
local name = ARGV[1]
local tick = tonumber(ARGV[2])
local key = ns .. ":schedule:" .. name .. ":" .. ARGV[2]

local state = redis.call("get", key)
if state and string.sub(state, 1, 10) == "committed|" then
  return 0
end
-- A key gone (its election ttl ran out during a publish that long) needs no marking: no process tries the tick now.
local ttl = redis.call("pttl", key)
if ttl > 0 then
  redis.call("set", key, "committed|" .. ARGV[3], "PX", ttl)
end
redis.call("del", key .. ":lease")
local recorded = redis.call("hget", ns .. ":schedules", name)
if not recorded or (tonumber(cjson.decode(recorded).tick) or -1) < tick then
  redis.call("hset", ns .. ":schedules", name, ARGV[4])
end
return 1
