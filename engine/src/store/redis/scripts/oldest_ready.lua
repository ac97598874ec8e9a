-- ARGV: P, queue. Returns the enqueue time (ms) of the oldest Ready job, or false.
-- The oldest is the lowest enqueue sequence across the queue's functions' ready sets and
-- every priority band in them (the score is band * BAND + seq, see rank in the prelude), so
-- a low-priority job left waiting shows in the oldest-ready age.
local q = ARGV[2]
local best_seq, best_id = nil, nil
for _, f in ipairs(redis.call('SMEMBERS', k_fns(q))) do
  local key = k_ready(q, f)
  if redis.call('EXISTS', key) == 1 then
    for band = 0, 9 do
      local lo = band * BAND
      local head = redis.call('ZRANGEBYSCORE', key, string.format('%.0f', lo),
        '(' .. string.format('%.0f', lo + BAND), 'WITHSCORES', 'LIMIT', 0, 1)
      if head[1] then
        local seq = tonumber(head[2]) - lo
        if best_seq == nil or seq < best_seq then best_seq, best_id = seq, head[1] end
      end
    end
  end
end
if best_id == nil then return false end
return tonumber(redis.call('HGET', k_job(best_id), 'enq'))
