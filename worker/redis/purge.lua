-- Drop a queue (`q` or `q.DQ`), this worker's ack set for it and the canonical dead-letter queue, like
-- Dramatiq's purge (other workers' ack sets survive), plus the dead-letter reasons.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id.
local ns = KEYS[1]
local queue = ns .. ":" .. ARGV[2]
local xq = ns .. ":" .. string.gsub(ARGV[2], "%.DQ$", "") .. ".XQ"
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])
redis.call("del", queue, queue .. ".msgs", ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2], xq, xq .. ".msgs", xq .. ".reasons", xq .. ".reasons.at")
return 0
