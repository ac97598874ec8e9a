-- ARGV: P, queue, count, window_ms, burst, want, now (engine clock).
-- Takes up to `want` whole tokens of the queue's bucket (limits::rate::Bucket::take, in one
-- place for every engine on the prefix). Returns { granted, next_at or -1 }: next_at when
-- the bucket holds a whole token again, if the take left it with less than one.
local q, count_, window, burst, want, now =
  ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local tokens, at, ms_per_token = bucket(q, count_, window, burst, now)
local granted = math.min(math.floor(tokens), want)
tokens = tokens - granted
local next_at = -1
if tokens < 1 then next_at = at + math.ceil((1 - tokens) * ms_per_token) end
store_bucket(q, tokens, at, burst, ms_per_token)
return { granted, next_at }
