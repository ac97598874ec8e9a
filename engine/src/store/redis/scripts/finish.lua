-- ARGV: P, id, lease, kind (complete | retry | dead | release), then
--   retry: due err_message err_code err_stack
--   dead:  dead_at err_message err_code err_stack
-- Returns 1 when applied, 0 when the lease is stale (nothing changed).
local id, lease, kind = ARGV[2], ARGV[3], ARGV[4]
local key = k_job(id)
local j = redis.call('HMGET', key, 'state', 'lease', 'queue', 'fn', 'seq', 'group')
if j[1] ~= 'inflight' or j[2] ~= lease then return 0 end
local q, group = j[3], j[6]
redis.call('ZREM', K_LEASES, id)
redis.call('HINCRBY', k_counts(q), 'in_flight', -1)
local woke = false
if kind == 'complete' then
  redis.call('HINCRBY', k_counts(q), 'completed', 1)
  if group then woke = leave_group(q, group, id) end
  redis.call('DEL', key)
elseif kind == 'retry' then
  redis.call('HINCRBY', k_counts(q), 'failed', 1)
  redis.call('ZADD', k_delayed(q), ARGV[5], id)
  redis.call('HSET', key, 'state', 'delayed', 'due', ARGV[5],
    'err', 1, 'err_message', ARGV[6], 'err_code', ARGV[7], 'err_stack', ARGV[8])
  woke = true
elseif kind == 'dead' then
  redis.call('HINCRBY', k_counts(q), 'failed', 1)
  redis.call('HINCRBY', k_counts(q), 'dead_lettered', 1)
  local dead_seq = redis.call('INCR', K_SEQ)
  redis.call('ZADD', k_dead(q), dead_seq, id)
  redis.call('HSET', key, 'state', 'dead', 'seq', dead_seq, 'dead_at', ARGV[5],
    'err', 1, 'err_message', ARGV[6], 'err_code', ARGV[7], 'err_stack', ARGV[8])
  if group then woke = leave_group(q, group, id) end
elseif kind == 'release' then
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HINCRBY', k_counts(q), 'ready', 1)
  make_ready(id, q, j[4], j[5])
  woke = true
else
  return redis.error_reply('unknown finish kind ' .. kind)
end
if woke then redis.call('PUBLISH', K_CHANGED, kind) end
return 1
