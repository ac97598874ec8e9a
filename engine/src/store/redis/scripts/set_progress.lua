-- ARGV: P, id, lease, has_value (0|1), value, has_detail (0|1), detail.
-- The latest progress of the attempt in flight under `lease` (fields prog, prog_v, prog_d;
-- lease.lua clears them when the next attempt starts). Returns 1, or 0 when the lease is
-- stale (nothing changed).
local key = k_job(ARGV[2])
local j = redis.call('HMGET', key, 'state', 'lease')
if j[1] ~= 'inflight' or j[2] ~= ARGV[3] then return 0 end
redis.call('HSET', key, 'prog', 1)
if ARGV[4] == '1' then redis.call('HSET', key, 'prog_v', ARGV[5]) else redis.call('HDEL', key, 'prog_v') end
if ARGV[6] == '1' then redis.call('HSET', key, 'prog_d', ARGV[7]) else redis.call('HDEL', key, 'prog_d') end
return 1
