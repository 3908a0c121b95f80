-- rateLimited: the vendor answered 429. It pauses for every worker until `Retry-After` (on the
-- Redis server's clock); a learned rate is cut, unless the 429 came during a pause (from a call
-- sent before it), from the lesser of the pace and the slots taken in the last second. Core's
-- `RateLimitStore.limited`, in one step.
--
-- KEYS[1]  the vendor's rate state (hash)  <prefix>{v:<vendor>}:rate:state
-- ARGV[1]  how long to pause, ms
-- ARGV[2]  "1" when the rate is learned
-- ARGV[3]  how long the state outlives its last use, ms
-- ARGV[4…] the learning constants: initialRate, minimumRate, congestedWithinMillis, cut, congestedCut
-- returns  the end of the pause, ms on the server's clock

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local f = redis.call("HMGET", KEYS[1], "paused", "rate", "cut", "countedAt", "counted", "countedBefore")
local paused = tonumber(f[1]) or 0
local rate = tonumber(f[2]) or 0
local lastCut = tonumber(f[3]) or 0
local pausedUntil = math.max(paused, now + tonumber(ARGV[1]))
redis.call("HSET", KEYS[1], "paused", string.format("%.3f", pausedUntil))
if ARGV[2] == "1" and now >= paused then
  if rate <= 0 then rate = tonumber(ARGV[4]) end
  -- Slots taken in the last second (`RateLimitStore.lastSecond`): the refused rate is the lesser.
  local countedAt = tonumber(f[4]) or 0
  local counted = tonumber(f[5]) or 0
  local countedBefore = tonumber(f[6]) or 0
  local second = math.floor(now / 1000) * 1000
  local into = (now - second) / 1000
  local taken = 0
  if second == countedAt then
    taken = counted + countedBefore * (1 - into)
  elseif second == countedAt + 1000 then
    taken = counted * (1 - into)
  end
  local refused = rate
  if taken >= tonumber(ARGV[5]) then refused = math.min(rate, taken) end
  local congested = lastCut > 0 and now - paused < tonumber(ARGV[6])
  local share = tonumber(ARGV[7])
  if congested then share = tonumber(ARGV[8]) end
  redis.call("HSET", KEYS[1],
    "refused", string.format("%.6f", refused),
    "rate", string.format("%.6f", math.max(tonumber(ARGV[5]), refused * share)),
    "source", "probed",
    "cut", string.format("%.3f", now),
    "grew", string.format("%.3f", pausedUntil))
end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return string.format("%.3f", pausedUntil)
