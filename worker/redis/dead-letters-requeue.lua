-- Put dead letters back on their queue, one atomic step per batch: each id still in `ns:<q>.XQ.msgs` leaves the
-- sorted set `.XQ`, `.XQ.msgs` and its reason, its body goes to `<target>.msgs` and its id to the tail of the
-- target list (`q`, or `q.DQ` for a letter that died on the delay queue, whose consumer promotes it when due).
-- An empty body argument keeps the stored body, so by default the bytes written back are the bytes read.
-- A crash between batches leaves every letter either still dead or back on its queue, never both, never neither.
-- KEYS[1] = namespace. ARGV = canonical queue name, then (id, target queue name, body or "") triples.
-- Returns the number of ids moved.
-- @include push-ids
-- @include dead-letter-reasons

local ns = KEYS[1]
local q = ARGV[1]
local xq = ns .. ":" .. q .. ".XQ"
local by_target = {}
local targets = {}
local moved = 0
for i = 2, #ARGV, 3 do
  local id, target, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local stored = redis.call("hget", xq .. ".msgs", id)
  if stored and (target == q or target == q .. ".DQ") then
    if body == "" then
      body = stored
    end
    redis.call("zrem", xq, id)
    redis.call("hdel", xq .. ".msgs", id)
    forget_reasons(xq, { id })
    redis.call("hset", ns .. ":" .. target .. ".msgs", id, body)
    if not by_target[target] then
      by_target[target] = {}
      targets[#targets + 1] = target
    end
    local ids = by_target[target]
    ids[#ids + 1] = id
    moved = moved + 1
  end
end
for _, target in ipairs(targets) do
  push_ids(ns, target, by_target[target])
end
return moved
