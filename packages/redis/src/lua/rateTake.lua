-- rateTake: takes a vendor's next rate-limit slot, on the Redis server's clock, so every worker
-- shares one pace whatever its own clock says. The rules are core's `RateLimitStore.take` (and
-- `grow`), applied to the vendor's state hash in one step; core's conformance suite holds the two
-- to the same answers.
--
-- KEYS[1]  the vendor's rate state (hash)  <prefix>{v:<vendor>}:rate:state
-- ARGV[1]  fixed interval in ms, or -1 for a learned pace
-- ARGV[2]  learned pace: its ceiling in calls per second, or -1 for none
-- ARGV[3]  how long the state outlives its last use, ms
-- ARGV[4…] the learning constants: initialRate, holdMillis, below, climb, creep
-- returns  { the wait before the slot, the server's clock }, ms (strings, to keep their fractions)
--
-- One write of one key: a crash before it leaves the state as it was, after it the slot is taken.

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local f = redis.call("HMGET", KEYS[1], "next", "paused", "rate", "source", "refused", "grew", "cut",
  "countedAt", "counted", "countedBefore")
local nextSlot = tonumber(f[1]) or 0
local paused = tonumber(f[2]) or 0
local rate = tonumber(f[3]) or 0
local source = f[4] or "none"
local refused = tonumber(f[5]) or 0
local grew = tonumber(f[6]) or 0
local cut = tonumber(f[7]) or 0
local fixed = tonumber(ARGV[1])
local ceiling = tonumber(ARGV[2])
if ceiling < 0 then ceiling = math.huge end
local initialRate, holdMillis = tonumber(ARGV[4]), tonumber(ARGV[5])
local below, climb, creep = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

local start = math.max(now, nextSlot, paused)
local interval = fixed
if fixed < 0 then
  if rate <= 0 then rate = math.min(initialRate, ceiling) end
  local busy = nextSlot >= now
  if busy and source ~= "advertised" then
    local seconds = math.min(1000, math.max(0, now - grew)) / 1000
    local grown
    if refused == 0 then
      grown = rate * 2 ^ seconds
    else
      local target = refused * below
      if rate < target then
        grown = math.min(target, rate + climb * refused * seconds)
      elseif now - cut >= holdMillis then
        grown = rate + creep * refused * seconds
      else
        grown = rate
      end
    end
    rate = grown
    source = "probed"
  elseif source == "none" then
    source = "probed"
  end
  rate = math.min(rate, ceiling)
  interval = 1000 / rate
  -- One more slot in the per-second counts (`RateLimitStore.count`).
  local countedAt = tonumber(f[8]) or 0
  local counted = tonumber(f[9]) or 0
  local countedBefore = tonumber(f[10]) or 0
  local second = math.floor(now / 1000) * 1000
  if second == countedAt then
    counted = counted + 1
  else
    if second == countedAt + 1000 then countedBefore = counted else countedBefore = 0 end
    countedAt = second
    counted = 1
  end
  redis.call("HSET", KEYS[1], "rate", string.format("%.6f", rate), "source", source, "grew", string.format("%.3f", now),
    "countedAt", string.format("%d", countedAt), "counted", counted, "countedBefore", countedBefore)
end
redis.call("HSET", KEYS[1], "next", string.format("%.3f", start + interval))
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return { string.format("%.3f", start - now), string.format("%.3f", now) }
