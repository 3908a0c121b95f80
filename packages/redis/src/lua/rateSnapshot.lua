-- rateSnapshot: what `/stats` shows of a vendor's limit, read on the server's clock.
--
-- KEYS[1]  the vendor's rate state (hash)               <prefix>{v:<vendor>}:rate:state
-- KEYS[2]  the vendor's in-flight leases (sorted set)    <prefix>{v:<vendor>}:rate:slots
-- returns  { rate, source, paused for ms, live leases }

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local f = redis.call("HMGET", KEYS[1], "rate", "source", "paused")
local paused = tonumber(f[3]) or 0
return {
  f[1] or "0",
  f[2] or "none",
  string.format("%.3f", math.max(0, paused - now)),
  redis.call("ZCOUNT", KEYS[2], "(" .. now, "+inf")
}
