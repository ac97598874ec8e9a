-- ARGV: P, queue, after (dead sequence, exclusive), limit.
-- Returns { more (0|1), last dead sequence, { HGETALL per entry } }.
local q, after, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out, last, more = {}, '', 0
if limit > 0 then
  local r = redis.call('ZRANGEBYSCORE', k_dead(q), '(' .. after, '+inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
  for i = 1, #r, 2 do
    if #out == limit then
      more = 1
      break
    end
    table.insert(out, redis.call('HGETALL', k_job(r[i])))
    last = r[i + 1]
  end
end
return { more, last, out }
