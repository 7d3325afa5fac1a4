-- Phase one of a tick's election on a broker that publishes elsewhere (RabbitMQ): claim the tick for the caller
-- with a lease, or keep the claim the caller holds, or take over a claim whose holder let its lease lapse without
-- committing it (it died, or stalled longer than the lease, between winning the tick and the broker's confirm).
-- The holder publishes, then commits with schedule-commit.lua; until then every process that reached the tick
-- follows the claim, so a holder that dies is replaced and the tick is still published.
-- KEYS[1] = namespace. ARGV = schedule name, tick (epoch ms), election ttl (ms), lease (ms), claimant (unique per
-- store: host:pid/instance).
-- State: `ns:schedule:<name>:<tick>` = "claimed|<holder>|<previous tick>", "committed|<committer>" or
-- "skipped|<claimant>" (paused), living the election ttl; `<that key>:lease` = holder, living the lease;
-- `ns:schedules.claimed` = the latest tick claimed per schedule (see schedule_previous).
-- Returns {status, previous tick or -1, lease left (ms), holder taken over or followed or ""}, status:
-- 1 the caller holds the claim (new, kept — its lease renewed — or taken over from the holder returned),
-- 0 refused (committed or skipped already, or older than the previous tick), 2 paused (skipped, nothing to publish),
-- 3 held by the holder returned, whose lease has the time returned left: try again then.
-- @include schedule-previous

local ns = KEYS[1]
local name = ARGV[1]
local tick = tonumber(ARGV[2])
local key = ns .. ":schedule:" .. name .. ":" .. ARGV[2]
local lease = key .. ":lease"
local claimant = ARGV[5]

local state = redis.call("get", key)
if state then
  local kind, holder, previous = string.match(state, "^(%a+)|([^|]*)|?(.*)$")
  if kind ~= "claimed" then
    return {0, -1, 0, ""}
  end
  previous = tonumber(previous) or -1
  if holder == claimant then
    redis.call("set", lease, claimant, "PX", ARGV[4])
    return {1, previous, 0, ""}
  end
  local left = redis.call("pttl", lease)
  if left > 0 then
    return {3, previous, left, holder}
  end
  -- The previous tick of the first claim travels with the claim, so the new holder counts the same misfires.
  redis.call("set", key, "claimed|" .. claimant .. "|" .. previous, "PX", math.max(1, redis.call("pttl", key)))
  redis.call("set", lease, claimant, "PX", ARGV[4])
  return {1, previous, 0, holder}
end

local previous = schedule_previous(ns, name)
if previous >= tick then
  return {0, previous, 0, ""}
end
if redis.call("hexists", ns .. ":schedules.paused", name) == 1 then
  redis.call("set", key, "skipped|" .. claimant, "PX", ARGV[3])
  redis.call("hset", ns .. ":schedules.skipped", name, ARGV[2])
  return {2, previous, 0, ""}
end
redis.call("set", key, "claimed|" .. claimant .. "|" .. previous, "PX", ARGV[3])
redis.call("set", lease, claimant, "PX", ARGV[4])
redis.call("hset", ns .. ":schedules.claimed", name, ARGV[2])
return {1, previous, 0, ""}
