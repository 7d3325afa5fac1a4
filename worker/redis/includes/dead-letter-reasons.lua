-- Troupe's dead-letter reasons: `<xq>.reasons` (hash id -> reason) and `<xq>.reasons.at` (sorted set id -> the
-- dead letter's score). Python peers remove dead letters without touching either, but always a prefix by score
-- (maintenance drops scores <= now - dead_message_ttl, flush drops the whole `.XQ`), so every reason scored below
-- the oldest remaining dead letter has lost its dead letter. Both keys also expire dead_message_ttl after their
-- newest reason, which is no earlier than any of their dead letters expires, so they go away even when no Troupe
-- process is left to sweep them.
local function keep_reason(xq, id, reason, now, dead_message_ttl)
  local reasons, at = xq .. ".reasons", xq .. ".reasons.at"
  redis.call("hset", reasons, id, reason)
  redis.call("zadd", at, now, id)
  for _, key in ipairs({ reasons, at }) do
    if redis.call("pttl", key) < dead_message_ttl then
      redis.call("pexpire", key, dead_message_ttl)
    end
  end
end

-- `ids`: a non-empty list the Lua stack can unpack.
local function forget_reasons(xq, ids)
  redis.call("hdel", xq .. ".reasons", unpack(ids))
  redis.call("zrem", xq .. ".reasons.at", unpack(ids))
end

-- Drop the reasons whose dead letter someone else removed, at most max_unpack ids per call of redis.call.
local function sweep_reasons(xq, max_unpack)
  local oldest = redis.call("zrange", xq, 0, 0, "WITHSCORES")
  if #oldest == 0 then
    redis.call("del", xq .. ".reasons", xq .. ".reasons.at")
    return
  end
  while true do
    local orphans = redis.call("zrangebyscore", xq .. ".reasons.at", "-inf", "(" .. oldest[2], "LIMIT", 0, max_unpack)
    if #orphans == 0 then
      return
    end
    forget_reasons(xq, orphans)
  end
end
