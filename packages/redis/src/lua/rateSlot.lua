-- rateSlot: takes (or renews) an in-flight slot for one call, if fewer than the cap are held. A
-- slot is a lease, a member of the set scored with its expiry on the Redis server's clock: leases
-- past their expiry (a dead worker's) are dropped first, so its slots come back. Core's
-- `RateLimitStore.acquireSlot`, in one step.
--
-- KEYS[1]  the vendor's in-flight leases (sorted set)  <prefix>{v:<vendor>}:rate:slots
-- ARGV[1]  the holder (one call's own id)
-- ARGV[2]  the cap on calls in flight
-- ARGV[3]  the lease, ms
-- returns  1 when the holder holds a slot now, else 0

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZSCORE", KEYS[1], ARGV[1]) == false and redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call("ZADD", KEYS[1], string.format("%.3f", now + tonumber(ARGV[3])), ARGV[1])
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1
