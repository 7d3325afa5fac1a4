-- The latest tick of schedule `name` that was elected in namespace `ns`, or -1: the committed record (hash
-- `ns:schedules`, JSON with "tick"), the latest tick elected while paused (`ns:schedules.skipped`) and, on a broker
-- that publishes elsewhere, the latest tick claimed (`ns:schedules.claimed`). A tick at or before it is refused
-- unless it is already claimed, so the ticks of a schedule are elected in order.
local function schedule_previous(ns, name)
  local previous = math.max(tonumber(redis.call("hget", ns .. ":schedules.skipped", name)) or -1, tonumber(redis.call("hget", ns .. ":schedules.claimed", name)) or -1)
  local recorded = redis.call("hget", ns .. ":schedules", name)
  if recorded then
    previous = math.max(previous, tonumber(cjson.decode(recorded).tick) or -1)
  end
  return previous
end
