-- Shared by every script (prepended to each). ARGV[1] is always the key prefix.
-- The key layout is documented in keys.rs; these builders must match it.
local P = ARGV[1]
local function qk(q) return P .. ':q:' .. #q .. ':' .. q end
local function k_job(id) return P .. ':job:' .. id end
local function k_ready(q, f) return qk(q) .. ':ready:' .. f end
local function k_delayed(q) return qk(q) .. ':delayed' end
local function k_group(q, g) return qk(q) .. ':group:' .. g end
local function k_dead(q) return qk(q) .. ':dead' end
local function k_counts(q) return qk(q) .. ':counts' end
local function k_fns(q) return qk(q) .. ':fns' end
local function k_dedup(q, key) return qk(q) .. ':dedup:' .. key end
local function k_rate(q) return qk(q) .. ':rate' end
local K_SEQ = P .. ':seq'
local K_LEASE_SEQ = P .. ':lease-seq'
local K_LEASES = P .. ':leases'
local K_CHANGED = P .. ':changed'
local K_RETAINED = P .. ':retained'

-- Lease deadlines use the Redis server's clock, so engines on hosts with skewed clocks agree.
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A ready set's score: the priority band (priority 9 first), then the enqueue sequence,
-- as (9 - prio) * 2^48 + seq. A double holds it exactly while seq < 2^48 (2.8e14 enqueues
-- and dead-letterings per prefix). Sent as integer text, so no number formatting on the way
-- (Lua's tostring keeps only 14 significant digits; these scores have 16) can round it.
local BAND = 281474976710656
local function rank(prio, seq)
  return string.format('%.0f', (9 - (tonumber(prio) or 0)) * BAND + tonumber(seq))
end

-- Puts a job into its function's ready set, by priority then enqueue order. It must be in
-- no other index.
local function make_ready(id, q, f, seq)
  local prio = redis.call('HGET', k_job(id), 'prio')
  redis.call('ZADD', k_ready(q, f), rank(prio, seq), id)
  redis.call('HSET', k_job(id), 'state', 'ready')
end

-- Ready, or Delayed until its not_before (field nb, a delayed enqueue's) while it has one.
-- Returns whether it is ready.
local function make_due(id, q, f, seq)
  local nb = redis.call('HGET', k_job(id), 'nb')
  if nb then
    redis.call('ZADD', k_delayed(q), nb, id)
    redis.call('HSET', k_job(id), 'state', 'delayed')
    return false
  end
  make_ready(id, q, f, seq)
  return true
end

-- Appends a FIFO job to its group: due (ready or delayed) if it is the head, Waiting behind
-- it otherwise. Returns the state it took.
local function join_group(id, q, f, g, seq)
  if redis.call('RPUSH', k_group(q, g), id) == 1 then
    if make_due(id, q, f, seq) then return 'ready' end
    return 'delayed'
  end
  redis.call('HSET', k_job(id), 'state', 'waiting')
  return 'waiting'
end

-- Removes a group's head (completed or dead-lettered) and makes the next member Ready.
-- Returns whether a job became ready.
local function leave_group(q, g, id)
  local key = k_group(q, g)
  redis.call('LREM', key, 1, id)
  local nxt = redis.call('LINDEX', key, 0)
  if nxt then
    local j = redis.call('HMGET', k_job(nxt), 'state', 'fn', 'seq')
    if j[1] == 'waiting' then
      -- A successor delayed until its not_before leaves the ready count (waiting is in it).
      if not make_due(nxt, q, j[2], j[3]) then redis.call('HINCRBY', k_counts(q), 'ready', -1) end
      return true
    end
  end
  return false
end

-- How much longer than its retention a finished job's hash lives in Redis: the sweep
-- (expire_finished, on the engines' clock) forgets it at its expires_at; the PEXPIRE is the
-- backstop for a prefix no engine sweeps any more, late enough that a skewed engine clock
-- never loses a job before its time.
local RETAIN_GRACE_MS = 60000

-- The job is Completed (with `result`) or Cancelled as of `at`, kept until `till` (engine
-- clock): in the retained index (scored by till) and with its hash expiring in Redis after
-- that. `clear`: it may still have a cancel request or a not_before to drop.
local function retain(id, state, at, till, clear, result)
  local key = k_job(id)
  if clear then redis.call('HDEL', key, 'cancel', 'cat', 'ckeep', 'nb') end
  if result then
    redis.call('HSET', key, 'state', state, 'fin', at, 'exp', till, 'result', result)
  else
    redis.call('HSET', key, 'state', state, 'fin', at, 'exp', till)
  end
  redis.call('ZADD', K_RETAINED, till, id)
  redis.call('PEXPIRE', key, math.max(tonumber(till) - tonumber(at), 0) + RETAIN_GRACE_MS)
end

-- The attempt of a cancel-requested job ended other than by success (failed, released,
-- reclaimed): Cancelled, leaving its FIFO group. Ended at `at` when the end carries a time
-- (never before the request), else at the cancel request's (field cat); kept as long after
-- that as the request said (field ckeep). Returns whether a successor became ready.
local function end_cancelled(id, q, group, at)
  local c = redis.call('HMGET', k_job(id), 'cat', 'ckeep')
  local requested = tonumber(c[1]) or 0
  local ended = math.max(tonumber(at) or requested, requested)
  local woke = false
  if group then woke = leave_group(q, group, id) end
  retain(id, 'cancelled', string.format('%.0f', ended), string.format('%.0f', ended + (tonumber(c[2]) or 0)), true)
  return woke
end

-- An attempt that did not happen (engine gone, recovered): InFlight -> Ready, the attempt
-- not counted; Cancelled instead when a cancel was requested. Returns whether the job was in
-- flight.
local function unlease(id)
  redis.call('ZREM', K_LEASES, id)
  local j = redis.call('HMGET', k_job(id), 'state', 'queue', 'fn', 'seq', 'cancel', 'group')
  if j[1] ~= 'inflight' then return false end
  redis.call('HINCRBY', k_job(id), 'attempts', -1)
  redis.call('HINCRBY', k_counts(j[2]), 'in_flight', -1)
  if j[5] == '1' then
    end_cancelled(id, j[2], j[6], nil)
    return true
  end
  redis.call('HINCRBY', k_counts(j[2]), 'ready', 1)
  make_ready(id, j[2], j[3], j[4])
  return true
end

-- Takes back up to `limit` leases whose deadline has passed (their engine stopped
-- heartbeating). Publishes when any came back. Returns how many.
local function reclaim_expired(limit)
  local ids = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', server_now(), 'LIMIT', 0, limit)
  local n = 0
  for _, id in ipairs(ids) do
    if unlease(id) then n = n + 1 end
  end
  if n > 0 then redis.call('PUBLISH', K_CHANGED, 'reclaim') end
  return n
end

local function count(x) return tonumber(x) or 0 end

-- A token bucket (hash `tokens at` at k_rate(q)) as of `now`, refilled (never backwards in
-- time), exactly as limits::rate::Bucket does: a bucket seen for the first time is full.
-- Returns tokens, at, ms_per_token.
local function bucket(q, count_, window, burst, now)
  local ms_per_token = window / count_
  local b = redis.call('HMGET', k_rate(q), 'tokens', 'at')
  local tokens, at = tonumber(b[1]), tonumber(b[2])
  if tokens == nil or at == nil then return burst, now, ms_per_token end
  if now > at then
    tokens = math.min(tokens + (now - at) / ms_per_token, burst)
    at = now
  end
  return tokens, at, ms_per_token
end

-- Writes a bucket back. It expires once it would be full again anyway (plus a minute, so a
-- test clock that runs behind Redis time does not see it refilled early): a missing bucket
-- is a full one.
local function store_bucket(q, tokens, at, burst, ms_per_token)
  redis.call('HSET', k_rate(q), 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', at))
  redis.call('PEXPIRE', k_rate(q), math.ceil(burst * ms_per_token) + 60000)
end
