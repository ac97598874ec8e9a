-- ARGV: P, now (engine clock), limit.
-- Forgets up to `limit` retained (Completed / Cancelled) jobs whose expires_at is at or
-- before `now`, oldest expiry first. Returns { forgotten, more (0|1) }: more when the batch
-- was full, so the caller runs another (bounded work per run keeps Redis responsive).
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', K_RETAINED, '-inf', now, 'LIMIT', 0, limit)
local n = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', K_RETAINED, id)
  local key = k_job(id)
  local j = redis.call('HMGET', key, 'state', 'exp')
  if (j[1] == 'completed' or j[1] == 'cancelled') and tonumber(j[2]) <= now then
    n = n + redis.call('DEL', key)
  end
end
local more = 0
if #ids == limit then more = 1 end
return { n, more }
