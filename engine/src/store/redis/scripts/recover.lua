-- ARGV: P, engine, then per lease this store instance still holds: id lease.
-- Start-up: those leases and every expired lease become Ready, the interrupted attempts
-- not counted. Returns how many.
local engine = ARGV[2]
local n = 0
for i = 3, #ARGV, 2 do
  local id, lease = ARGV[i], ARGV[i + 1]
  local j = redis.call('HMGET', k_job(id), 'state', 'lease', 'owner')
  if j[1] == 'inflight' and j[2] == lease and j[3] == engine and unlease(id) then n = n + 1 end
end
if n > 0 then redis.call('PUBLISH', K_CHANGED, 'recover') end
return n + reclaim_expired(100000)
