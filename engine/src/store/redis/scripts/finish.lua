-- ARGV: P, id, lease, kind (complete | retain | cancelled | retry | dead | release), then
--   retain:    result at until
--   cancelled: at until
--   retry:     due err_message err_code err_stack
--   dead:      dead_at err_message err_code err_stack
-- Returns 1 when applied, 0 when the lease is stale (nothing changed).
-- A cancel-requested job (field cancel) whose attempt ends in a retry, a dead-lettering or
-- a release ends Cancelled instead (not counted failed); a completion stays a completion.
local id, lease, kind = ARGV[2], ARGV[3], ARGV[4]
local KINDS = { complete = true, retain = true, cancelled = true, retry = true, dead = true, release = true }
if not KINDS[kind] then return redis.error_reply('unknown finish kind ' .. kind) end
local key = k_job(id)
local j = redis.call('HMGET', key, 'state', 'lease', 'queue', 'fn', 'seq', 'group', 'cancel')
if j[1] ~= 'inflight' or j[2] ~= lease then return 0 end
local q, group, cancel_requested = j[3], j[6], j[7] == '1'
redis.call('ZREM', K_LEASES, id)
redis.call('HINCRBY', k_counts(q), 'in_flight', -1)

local function record_error(e)
  redis.call('HSET', key, 'err', 1, 'err_message', ARGV[e], 'err_code', ARGV[e + 1], 'err_stack', ARGV[e + 2])
end

local woke = false
if kind == 'complete' then
  redis.call('HINCRBY', k_counts(q), 'completed', 1)
  if group then woke = leave_group(q, group, id) end
  redis.call('DEL', key)
elseif kind == 'retain' then
  redis.call('HINCRBY', k_counts(q), 'completed', 1)
  if group then woke = leave_group(q, group, id) end
  retain(id, 'completed', ARGV[6], ARGV[7], cancel_requested, ARGV[5])
elseif kind == 'cancelled' then
  if group then woke = leave_group(q, group, id) end
  retain(id, 'cancelled', ARGV[5], ARGV[6], cancel_requested)
elseif cancel_requested and (kind == 'retry' or kind == 'dead' or kind == 'release') then
  -- As Finish::Cancelled (the attempt's error is not kept, as for a cancel the engine made).
  local at = nil
  if kind == 'release' then redis.call('HINCRBY', key, 'attempts', -1) end
  if kind == 'dead' then at = ARGV[5] end
  woke = end_cancelled(id, q, group, at)
elseif kind == 'retry' then
  redis.call('HINCRBY', k_counts(q), 'failed', 1)
  redis.call('ZADD', k_delayed(q), ARGV[5], id)
  redis.call('HSET', key, 'state', 'delayed', 'due', ARGV[5])
  record_error(6)
  woke = true
elseif kind == 'dead' then
  redis.call('HINCRBY', k_counts(q), 'failed', 1)
  redis.call('HINCRBY', k_counts(q), 'dead_lettered', 1)
  local dead_seq = redis.call('INCR', K_SEQ)
  redis.call('ZADD', k_dead(q), dead_seq, id)
  redis.call('HSET', key, 'state', 'dead', 'seq', dead_seq, 'dead_at', ARGV[5])
  record_error(6)
  if group then woke = leave_group(q, group, id) end
else -- release
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HINCRBY', k_counts(q), 'ready', 1)
  make_ready(id, q, j[4], j[5])
  woke = true
end
if woke then redis.call('PUBLISH', K_CHANGED, kind) end
return 1
