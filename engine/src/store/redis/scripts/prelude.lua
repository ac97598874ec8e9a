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
local K_SEQ = P .. ':seq'
local K_LEASE_SEQ = P .. ':lease-seq'
local K_LEASES = P .. ':leases'
local K_CHANGED = P .. ':changed'

-- Lease deadlines use the Redis server's clock, so engines on hosts with skewed clocks agree.
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Puts a job into its function's ready set. It must be in no other index.
local function make_ready(id, q, f, seq)
  redis.call('ZADD', k_ready(q, f), seq, id)
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

-- An attempt that did not happen (engine gone, recovered): InFlight -> Ready, the attempt
-- not counted. Returns whether the job was in flight.
local function unlease(id)
  redis.call('ZREM', K_LEASES, id)
  local j = redis.call('HMGET', k_job(id), 'state', 'queue', 'fn', 'seq')
  if j[1] ~= 'inflight' then return false end
  redis.call('HINCRBY', k_job(id), 'attempts', -1)
  redis.call('HINCRBY', k_counts(j[2]), 'in_flight', -1)
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
