-- ARGV: P, queue, now, then job ids (none = every dead letter of the queue).
-- Dead -> Ready with a fresh budget; a FIFO job re-enters at the tail of its group.
local q, now = ARGV[2], ARGV[3]
local ids = {}
if #ARGV < 4 then
  ids = redis.call('ZRANGE', k_dead(q), 0, -1)
else
  for i = 4, #ARGV do table.insert(ids, ARGV[i]) end
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', k_dead(q), id) == 1 then
    local key = k_job(id)
    local seq = redis.call('INCR', K_SEQ)
    redis.call('HSET', key, 'seq', seq, 'attempts', 0, 'due', now)
    redis.call('HDEL', key, 'dead_at')
    redis.call('HINCRBY', k_counts(q), 'ready', 1)
    local j = redis.call('HMGET', key, 'fn', 'group')
    if j[2] then join_group(id, q, j[1], j[2], seq) else make_ready(id, q, j[1], seq) end
    n = n + 1
  end
end
if n > 0 then redis.call('PUBLISH', K_CHANGED, 'redrive') end
return n
