-- The console's actions on messages still waiting in a queue list, one atomic step per call: each id still in the
-- list `ns:<source>` (not yet fetched by a worker) leaves it and `ns:<source>.msgs`; "delete" drops it, "run-now"
-- writes the body given (the message with its delay removed) to `ns:<q>.msgs` and its id to the tail of `ns:<q>`.
-- A message a worker already fetched is not in the list and is left alone.
-- KEYS[1] = namespace. ARGV = canonical queue, source queue (q or q.DQ), "delete" | "run-now", then (id, body) pairs.
-- Returns the ids acted on.
-- @include push-ids

local ns = KEYS[1]
local q = ARGV[1]
local source = ARGV[2]
local op = ARGV[3]
if (source ~= q and source ~= q .. ".DQ") or (op ~= "delete" and op ~= "run-now") then
  return redis.error_reply("bad arguments")
end
local list = ns .. ":" .. source
local done = {}
for i = 4, #ARGV, 2 do
  local id, body = ARGV[i], ARGV[i + 1]
  if redis.call("lrem", list, 1, id) == 1 then
    redis.call("hdel", list .. ".msgs", id)
    if op == "run-now" then
      redis.call("hset", ns .. ":" .. q .. ".msgs", id, body)
    end
    done[#done + 1] = id
  end
end
if op == "run-now" then
  push_ids(ns, q, done)
end
return done
