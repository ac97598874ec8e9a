-- ARGV: P, queue, id, at, until (engine clock).
-- Returns { outcome, HGETALL of the job as it now stands }, outcome one of not_found,
-- cancelled, cancelling, already_cancelled, already_finished.
-- Ready / Waiting / Delayed -> Cancelled at once, out of its index (a FIFO group moves on
-- as when its head completes); InFlight -> field cancel (with the request's time `cat` and
-- how long to keep the job `ckeep`): the attempt's end makes it Cancelled (finish.lua,
-- unlease).
local q, id, at, till = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = k_job(id)
local j = redis.call('HMGET', key, 'state', 'queue', 'fn', 'group', 'cancel', 'exp')
local state = j[1]
if not state or j[2] ~= q then return { 'not_found', {} } end
if (state == 'completed' or state == 'cancelled') and tonumber(j[6]) <= tonumber(at) then
  return { 'not_found', {} }
end
if state == 'completed' or state == 'dead' then return { 'already_finished', redis.call('HGETALL', key) } end
if state == 'cancelled' or j[5] == '1' then return { 'already_cancelled', redis.call('HGETALL', key) } end
if state == 'inflight' then
  redis.call('HSET', key, 'cancel', 1, 'cat', at, 'ckeep', math.max(tonumber(till) - tonumber(at), 0))
  return { 'cancelling', redis.call('HGETALL', key) }
end
if state == 'ready' then
  redis.call('ZREM', k_ready(q, j[3]), id)
  redis.call('HINCRBY', k_counts(q), 'ready', -1)
elseif state == 'waiting' then
  redis.call('HINCRBY', k_counts(q), 'ready', -1) -- the ready gauge counts waiting jobs
elseif state == 'delayed' then
  redis.call('ZREM', k_delayed(q), id)
else
  return redis.error_reply('job ' .. id .. ' is in unknown state ' .. state)
end
local woke = false
if j[4] then woke = leave_group(q, j[4], id) end
retain(id, 'cancelled', at, till, true)
if woke then redis.call('PUBLISH', K_CHANGED, 'cancel') end
return { 'cancelled', redis.call('HGETALL', key) }
