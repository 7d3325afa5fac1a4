-- Dead-letter a message body that was pushed straight onto a queue list (`RPUSH ns:q '{…}'`, skipping the
-- `.msgs` hash): the list entry, now in this worker's ack set, is the body itself. It is kept byte for byte under a
-- message id of its own in `.XQ` / `.XQ.msgs`, with its reason, as other bad input is.
-- KEYS[1] = namespace. ARGV = now, queue_name, worker_id, listed entry, dead-letter id, reason, dead_message_ttl.
-- @include dead-letter-reasons
local ns = KEYS[1]
local acks = ns .. ":__acks__." .. ARGV[3] .. "." .. ARGV[2]
local xq = ns .. ":" .. string.gsub(ARGV[2], "%.DQ$", "") .. ".XQ"
redis.call("zadd", ns .. ":__heartbeats__", ARGV[1], ARGV[3])

if redis.call("srem", acks, ARGV[4]) == 0 then
  return 0
end
redis.call("zadd", xq, ARGV[1], ARGV[5])
redis.call("hset", xq .. ".msgs", ARGV[5], ARGV[4])
keep_reason(xq, ARGV[5], ARGV[6], ARGV[1], tonumber(ARGV[7]))
return 1
