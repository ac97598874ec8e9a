-- ARGV: P, queue, then job ids (none = every dead letter of the queue). Deletes them.
local q = ARGV[2]
local ids = {}
if #ARGV < 3 then
  ids = redis.call('ZRANGE', k_dead(q), 0, -1)
else
  for i = 3, #ARGV do table.insert(ids, ARGV[i]) end
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', k_dead(q), id) == 1 then
    redis.call('DEL', k_job(id))
    n = n + 1
  end
end
return n
