-- ARGV: P, queue, count, window_ms, burst, n, now (engine clock).
-- Gives back `n` tokens taken and not used, never beyond the burst
-- (limits::rate::Bucket::refund). Returns 1.
local q, count_, window, burst, n, now =
  ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local tokens, at, ms_per_token = bucket(q, count_, window, burst, now)
store_bucket(q, math.min(tokens + n, burst), at, burst, ms_per_token)
return 1
