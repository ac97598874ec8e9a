-- ARGV: P, engine, ttl_ms, then per lease the engine still holds: id lease.
-- Extends each of those leases that is still this engine's, then takes back expired
-- leases of other engines. Returns { reclaimed, { ids of leases this engine lost } }.
local engine, ttl = ARGV[2], tonumber(ARGV[3])
local deadline = server_now() + ttl
local lost = {}
for i = 4, #ARGV, 2 do
  local id, lease = ARGV[i], ARGV[i + 1]
  local j = redis.call('HMGET', k_job(id), 'state', 'lease', 'owner')
  if j[1] == 'inflight' and j[2] == lease and j[3] == engine then
    redis.call('ZADD', K_LEASES, 'XX', deadline, id)
  else
    table.insert(lost, id)
  end
end
return { reclaim_expired(1000), lost }
