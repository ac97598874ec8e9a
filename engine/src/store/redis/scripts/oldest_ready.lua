-- ARGV: P, queue. Returns the enqueue time (ms) of the oldest Ready job, or false.
-- The oldest is the lowest enqueue sequence across the queue's functions' ready sets.
local q = ARGV[2]
local best_seq, best_id = nil, nil
for _, f in ipairs(redis.call('SMEMBERS', k_fns(q))) do
  local head = redis.call('ZRANGE', k_ready(q, f), 0, 0, 'WITHSCORES')
  if head[1] and (best_seq == nil or tonumber(head[2]) < best_seq) then
    best_seq, best_id = tonumber(head[2]), head[1]
  end
end
if best_id == nil then return false end
return tonumber(redis.call('HGET', k_job(best_id), 'enq'))
