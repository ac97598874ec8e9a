-- ARGV: P, queue. Returns ready delayed in_flight dead enqueued completed failed dead_lettered.
local q = ARGV[2]
local c = redis.call('HMGET', k_counts(q), 'ready', 'in_flight', 'enqueued', 'completed', 'failed', 'dead_lettered')
return { count(c[1]), redis.call('ZCARD', k_delayed(q)), count(c[2]), redis.call('ZCARD', k_dead(q)),
  count(c[3]), count(c[4]), count(c[5]), count(c[6]) }
