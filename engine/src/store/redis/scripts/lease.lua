-- ARGV: P, queue, now, max, engine, ttl_ms, nfns, then per function: fn budget
-- Returns one HGETALL reply per leased job: highest priority first, then oldest (enqueue
-- order) first.
local q, now, max, engine, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local nf = tonumber(ARGV[7])

-- 1. Leases of engines that stopped heartbeating come back first (cheap when none).
reclaim_expired(100)

-- 2. Delayed jobs whose due time has come are Ready (they keep their enqueue sequence).
local PROMOTE = 1000
local due = redis.call('ZRANGEBYSCORE', k_delayed(q), '-inf', now, 'LIMIT', 0, PROMOTE)
for _, id in ipairs(due) do
  local j = redis.call('HMGET', k_job(id), 'fn', 'seq')
  redis.call('ZREM', k_delayed(q), id)
  redis.call('HDEL', k_job(id), 'nb') -- a delayed enqueue is delayed once: a redrive runs at once
  redis.call('HINCRBY', k_counts(q), 'ready', 1)
  make_ready(id, q, j[1], j[2])
end
if #due == PROMOTE then redis.call('PUBLISH', K_CHANGED, 'promote') end

-- 3. Merge the first candidates of every function (at most its budget each) by score:
--    priority band, then enqueue sequence (see rank in the prelude).
local lists = {}
for x = 0, nf - 1 do
  local f, budget = ARGV[8 + 2 * x], tonumber(ARGV[9 + 2 * x])
  local take = math.min(budget, max)
  if take > 0 then
    local r = redis.call('ZRANGE', k_ready(q, f), 0, take - 1, 'WITHSCORES')
    if #r > 0 then table.insert(lists, { f = f, r = r, pos = 1 }) end
  end
end
local picked = {}
while #picked < max do
  local best, best_seq = nil, nil
  for _, l in ipairs(lists) do
    if l.pos < #l.r then
      local s = tonumber(l.r[l.pos + 1])
      if best == nil or s < best_seq then best, best_seq = l, s end
    end
  end
  if best == nil then break end
  table.insert(picked, { id = best.r[best.pos], f = best.f })
  best.pos = best.pos + 2
end

-- 4. Each picked job is InFlight under a fresh lease id, owned by this engine until the
--    deadline, which the engine's heartbeat keeps pushing out while it holds the lease.
local out = {}
if #picked > 0 then
  local deadline = server_now() + ttl
  for _, p in ipairs(picked) do
    local key = k_job(p.id)
    redis.call('ZREM', k_ready(q, p.f), p.id)
    local lease = redis.call('INCR', K_LEASE_SEQ)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'inflight', 'lease', lease, 'owner', engine)
    redis.call('HDEL', key, 'prog', 'prog_v', 'prog_d') -- progress is the attempt's
    redis.call('ZADD', K_LEASES, deadline, p.id)
    table.insert(out, redis.call('HGETALL', key))
  end
  redis.call('HINCRBY', k_counts(q), 'ready', -#picked)
  redis.call('HINCRBY', k_counts(q), 'in_flight', #picked)
end
return out
