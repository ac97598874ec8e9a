-- ARGV: P, n, then per job: id queue fn payload has_group group enqueued_at not_before
--   dedup_key dedup_expires_at dedup_window_ms priority (not_before, dedup_key: '' for
--   none; priority 0-9, field prio only when above 0).
-- Returns one entry per job: '' when stored, else the id of the earlier job holding its
-- idempotency key (a duplicate: nothing stored). A claim is `P:q:..:dedup:<key>` holding
-- '<expires_at>|<first id>', set with PX = window (clean-up); it is live while expires_at
-- (engine clock) is after the enqueue's time, so every engine on the Redis agrees.
local n = tonumber(ARGV[2])
local i = 3
local seen = {}
local out = {}
local stored = 0
for _ = 1, n do
  local id, q, f, payload, has_g, g, enq, nb, dkey, dexp, dwin, prio =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7], ARGV[i + 8], ARGV[i + 9], ARGV[i + 10], ARGV[i + 11]
  i = i + 12
  local first = nil
  if dkey ~= '' then
    local held = redis.call('GET', k_dedup(q, dkey))
    if held then
      local sep = string.find(held, '|', 1, true)
      if sep and tonumber(string.sub(held, 1, sep - 1)) > tonumber(enq) then
        first = string.sub(held, sep + 1)
      end
    end
  end
  if first then
    table.insert(out, first)
  else
    table.insert(out, '')
    stored = stored + 1
    if dkey ~= '' then
      redis.call('SET', k_dedup(q, dkey), dexp .. '|' .. id, 'PX', dwin)
    end
    local seq = redis.call('INCR', K_SEQ)
    local key = k_job(id)
    redis.call('HSET', key, 'id', id, 'queue', q, 'fn', f, 'payload', payload, 'attempts', 0,
      'enq', enq, 'due', enq, 'seq', seq, 'lease', 0)
    if nb ~= '' then redis.call('HSET', key, 'nb', nb, 'due', nb) end
    if prio ~= '0' then redis.call('HSET', key, 'prio', prio) end
    -- The functions a queue has had jobs of: oldest_ready looks at their ready sets.
    if not seen[#q .. ':' .. q .. f] then
      seen[#q .. ':' .. q .. f] = true
      redis.call('SADD', k_fns(q), f)
    end
    redis.call('HINCRBY', k_counts(q), 'enqueued', 1)
    local state
    if has_g == '1' then
      redis.call('HSET', key, 'group', g)
      state = join_group(id, q, f, g, seq)
    elseif make_due(id, q, f, seq) then
      state = 'ready'
    else
      state = 'delayed'
    end
    -- The ready gauge counts ready and waiting jobs.
    if state ~= 'delayed' then redis.call('HINCRBY', k_counts(q), 'ready', 1) end
  end
end
if stored > 0 then redis.call('PUBLISH', K_CHANGED, 'enqueue') end
return out
