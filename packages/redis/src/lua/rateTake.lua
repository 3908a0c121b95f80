-- rateTake: takes a vendor's next rate-limit slot, on the Redis server's clock, so every worker
-- shares one pace whatever its own clock says. The rules are core's `RateLimitStore.take` (and
-- `grow`), applied to the vendor's state hash in one step; core's conformance suite holds the two
-- to the same answers.
--
-- KEYS[1]  the vendor's rate state (hash)  <prefix>{v:<vendor>}:rate:state
-- ARGV[1]  fixed interval in ms, or -1 for a learned pace
-- ARGV[2]  learned pace: its ceiling in calls per second, or -1 for none
-- ARGV[3]  how long the state outlives its last use, ms
-- ARGV[4…] the learning constants: initialRate, holdMillis, below, climb, creep, probeMillis,
--          probePollMillis, countBucketMillis, countBuckets; then dueSlotLagMillis
-- returns  { the wait, the server's clock (ms, strings to keep their fractions), "1" for a slot or
--          "0" for none yet (a learned limit's first call is still out: ask again after the wait),
--          "1" if the slot is a learned limit's first call (its probe) else "0" }
--
-- One write of one key: a crash before it leaves the state as it was, after it the slot is taken.

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local f = redis.call("HMGET", KEYS[1], "next", "paused", "rate", "source", "refused", "grew", "cut",
  "countedAt", "counts", "probeUntil")
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
local probeMillis, probePollMillis = tonumber(ARGV[9]), tonumber(ARGV[10])
local probeUntil = tonumber(f[10]) or 0

if fixed < 0 and source == "none" and now < probeUntil then
  return { string.format("%.3f", math.min(probePollMillis, probeUntil - now)), string.format("%.3f", now), "0", "0" }
end

local start = math.max(now, nextSlot, paused)
-- Where the interval to the next slot starts: a slot due (or nearly) reaches the vendor late.
local dueLag = tonumber(ARGV[13])
local from = math.max(start, now + dueLag)
local probe = "0"
local interval = fixed
if fixed < 0 then
  if rate <= 0 then rate = math.min(initialRate, ceiling) end
  -- Busy: callers wait for slots, longer than the lag after a slot that was due.
  local busy = nextSlot > now + dueLag
  if source == "none" and probeUntil == 0 then
    -- The first call: it probes alone, at the initial rate.
    redis.call("HSET", KEYS[1], "probeUntil", string.format("%.3f", now + probeMillis))
    probe = "1"
  elseif busy and source ~= "advertised" then
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
  else
    if source == "none" then source = "probed" end
  end
  rate = math.min(rate, ceiling)
  interval = 1000 / rate
  -- One more slot in the counts (`RateLimitStore.count`): per bucket it is due in, newest first,
  -- `RateLimitStore.countBuckets` of them.
  local width = tonumber(ARGV[11])
  local buckets = tonumber(ARGV[12])
  local bucket = math.floor(start / width) * width
  local shift = math.max(0, math.min(buckets, (bucket - (tonumber(f[8]) or 0)) / width))
  local old = {}
  for n in string.gmatch(f[9] or "", "[^,]+") do old[#old + 1] = tonumber(n) end
  local counts = {}
  for i = 1, buckets do
    if i <= shift then counts[i] = 0 else counts[i] = old[i - shift] or 0 end
  end
  counts[1] = counts[1] + 1
  redis.call("HSET", KEYS[1], "rate", string.format("%.17g", rate), "source", source, "grew", string.format("%.3f", now),
    "countedAt", string.format("%d", bucket), "counts", table.concat(counts, ","))
end
redis.call("HSET", KEYS[1], "next", string.format("%.3f", from + interval))
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return { string.format("%.3f", start - now), string.format("%.3f", now), "1", probe }
