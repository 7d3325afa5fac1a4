-- Dramatiq's maintenance for one queue: give the unacked messages of dead workers (heartbeat older than the
-- timeout) back to the queue, forget dead workers with no ack set left, and expire old dead letters; then drop the
-- reasons of dead letters that are gone, whoever removed them.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, heartbeat_timeout, dead_message_ttl, max_unpack.
-- @include push-ids
-- @include dead-letter-reasons

local ns = KEYS[1]
local now = tonumber(ARGV[1])
local queue_name = ARGV[2]
local msgs = ns .. ":" .. queue_name .. ".msgs"
local heartbeats = ns .. ":__heartbeats__"
local max_unpack = tonumber(ARGV[6])
redis.call("zadd", heartbeats, ARGV[1], ARGV[3])

local recovered = {}
local dead_workers = redis.call("zrangebyscore", heartbeats, "-inf", now - tonumber(ARGV[4]))
for _, worker in ipairs(dead_workers) do
  local acks = ns .. ":__acks__." .. worker .. "." .. queue_name
  for _, id in ipairs(redis.call("smembers", acks)) do
    if redis.call("hexists", msgs, id) == 1 then
      recovered[#recovered + 1] = id
    end
  end
  redis.call("del", acks)
  if #redis.call("keys", ns .. ":__acks__." .. worker .. "*") == 0 then
    redis.call("zrem", heartbeats, worker)
  end
end
push_ids(ns, queue_name, recovered)

local xq = ns .. ":" .. string.gsub(queue_name, "%.DQ$", "") .. ".XQ"
local cutoff = now - tonumber(ARGV[5])
while true do
  local expired = redis.call("zrangebyscore", xq, "-inf", cutoff, "LIMIT", 0, max_unpack)
  if #expired == 0 then
    break
  end
  redis.call("zrem", xq, unpack(expired))
  redis.call("hdel", xq .. ".msgs", unpack(expired))
end
sweep_reasons(xq, max_unpack)
return #recovered
