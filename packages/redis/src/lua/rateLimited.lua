-- rateLimited: the vendor answered 429. It pauses for every worker until `Retry-After` (on the
-- Redis server's clock); a learned rate is cut, unless the 429 came during a pause (from a call
-- sent before it) or to the first call, from the lesser of the pace and the calls the vendor let
-- through in the last second. Core's
-- `RateLimitStore.limited`, in one step.
--
-- KEYS[1]  the vendor's rate state (hash)  <prefix>{v:<vendor>}:rate:state
-- ARGV[1]  how long to pause, ms
-- ARGV[2]  "1" when the rate is learned
-- ARGV[3]  how long the state outlives its last use, ms
-- ARGV[4…] the learning constants: initialRate, minimumRate, congestedWithinMillis, cut, congestedCut,
--          countBucketMillis
-- returns  the end of the pause, ms on the server's clock

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local f = redis.call("HMGET", KEYS[1], "paused", "rate", "cut", "countedAt", "counts", "source")
local paused = tonumber(f[1]) or 0
local rate = tonumber(f[2]) or 0
local lastCut = tonumber(f[3]) or 0
local pausedUntil = math.max(paused, now + tonumber(ARGV[1]))
redis.call("HSET", KEYS[1], "paused", string.format("%.3f", pausedUntil))
-- A 429 to the first call (nothing learned yet) only pauses.
if ARGV[2] == "1" and now >= paused and (f[6] or "none") ~= "none" then
  if rate <= 0 then rate = tonumber(ARGV[4]) end
  -- Slots due in the last second (`RateLimitStore.lastSecond`) but the refused one: what the
  -- vendor let through. The refused rate is the lesser of it and the pace.
  local width = tonumber(ARGV[9])
  local oldest = 1000 / width
  local bucket = math.floor(now / width) * width
  -- How many buckets now is past the newest one counted (negative: slots due after now).
  local behind = (bucket - (tonumber(f[4]) or 0)) / width
  local into = (now - bucket) / width
  local taken = 0
  local i = -1
  for n in string.gmatch(f[5] or "", "[^,]+") do
    i = i + 1
    local back = i + behind
    if back == 0 then
      taken = taken + tonumber(n) * into
    elseif back > 0 and back < oldest then
      taken = taken + tonumber(n)
    elseif back == oldest then
      taken = taken + tonumber(n) * (1 - into)
    end
  end
  -- Under one is a share of a bucket, not a measure.
  local allowed = taken - 1
  local refused = rate
  if allowed >= 1 then refused = math.min(rate, allowed) end
  local congested = lastCut > 0 and now - paused < tonumber(ARGV[6])
  local share = tonumber(ARGV[7])
  if congested then share = tonumber(ARGV[8]) end
  redis.call("HSET", KEYS[1],
    "refused", string.format("%.17g", refused),
    "rate", string.format("%.17g", math.max(tonumber(ARGV[5]), refused * share)),
    "source", "probed",
    "cut", string.format("%.3f", now),
    "grew", string.format("%.3f", pausedUntil))
end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return string.format("%.3f", pausedUntil)
