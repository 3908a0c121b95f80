-- rateAdvertise: an answer from the vendor. When it advertised its limit, the learned pace follows
-- it from the last slot on (that slot was spaced at the old pace; it is spaced at this one); either
-- way the first call's probe is over. Core's `RateLimitStore.advertised`, in one step.
--
-- KEYS[1]  the vendor's rate state (hash)  <prefix>{v:<vendor>}:rate:state
-- ARGV[1]  the advertised pace, calls per second (less the pacing headroom), or -1 for none
-- ARGV[2]  how long the state outlives its last use, ms

local f = redis.call("HMGET", KEYS[1], "next", "rate", "source", "probeUntil")
local perSecond = tonumber(ARGV[1])
if perSecond < 0 then
  if (f[3] or "none") == "none" and (tonumber(f[4]) or 0) > 0 then redis.call("HSET", KEYS[1], "probeUntil", "1") end
  return 0
end
local nextSlot = tonumber(f[1]) or 0
local rate = tonumber(f[2]) or 0
if rate > 0 then
  redis.call("HSET", KEYS[1], "next", string.format("%.3f", nextSlot - 1000 / rate + 1000 / perSecond))
end
redis.call("HSET", KEYS[1], "rate", string.format("%.17g", perSecond), "source", "advertised")
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
