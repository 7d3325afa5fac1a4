-- Take up to n ids from the head of `ns:<queue>` into this worker's ack set and return them with their bodies.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, n (at most the Lua unpack limit).
-- Returns {ids, bodies}; a body is nil when the hash lost it (the caller drops such ids).
local ns = KEYS[1]
local queue = ns .. ":" .. ARGV[2]
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

local ids = redis.call("lpop", queue, tonumber(ARGV[4]))
if not ids then
  return {}
end
redis.call("sadd", ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2], unpack(ids))
return {ids, redis.call("hmget", queue .. ".msgs", unpack(ids))}
