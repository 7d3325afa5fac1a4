-- Append ids to the list `ns:<queue_name>` (in chunks the Lua stack can unpack) and, when the list was empty
-- before, publish on `ns:__wake__.<queue_name>` so that sleeping Troupe consumers poll at once.
local function push_ids(ns, queue_name, ids)
  local count = #ids
  if count == 0 then
    return 0
  end
  local length = 0
  for first = 1, count, 1000 do
    length = redis.call("rpush", ns .. ":" .. queue_name, unpack(ids, first, math.min(first + 999, count)))
  end
  if length == count then
    redis.call("publish", ns .. ":__wake__." .. queue_name, "")
  end
  return count
end
