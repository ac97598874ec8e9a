-- ARGV: P, n, then per job: id queue fn payload has_group group enqueued_at
local n = tonumber(ARGV[2])
local i = 3
local seen = {}
for _ = 1, n do
  local id, q, f, payload, has_g, g, enq =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  i = i + 7
  local seq = redis.call('INCR', K_SEQ)
  local key = k_job(id)
  redis.call('HSET', key, 'id', id, 'queue', q, 'fn', f, 'payload', payload, 'attempts', 0,
    'enq', enq, 'due', enq, 'seq', seq, 'lease', 0)
  -- The functions a queue has had jobs of: oldest_ready looks at their ready sets.
  if not seen[#q .. ':' .. q .. f] then
    seen[#q .. ':' .. q .. f] = true
    redis.call('SADD', k_fns(q), f)
  end
  redis.call('HINCRBY', k_counts(q), 'enqueued', 1)
  redis.call('HINCRBY', k_counts(q), 'ready', 1)
  if has_g == '1' then
    redis.call('HSET', key, 'group', g)
    join_group(id, q, f, g, seq)
  else
    make_ready(id, q, f, seq)
  end
end
if n > 0 then redis.call('PUBLISH', K_CHANGED, 'enqueue') end
return n
