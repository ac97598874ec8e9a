-- ARGV: P, then per lease an engine holds: id lease. Read only.
-- Returns the ids of those leases whose job is still in flight under that lease with a
-- cancel request (made through any engine): one round trip for an engine's every lease.
local out = {}
for i = 2, #ARGV, 2 do
  local j = redis.call('HMGET', k_job(ARGV[i]), 'state', 'lease', 'cancel')
  if j[1] == 'inflight' and j[2] == ARGV[i + 1] and j[3] == '1' then table.insert(out, ARGV[i]) end
end
return out
