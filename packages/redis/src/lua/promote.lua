-- promote: moves due jobs from the delayed set back into the stream, with their delivery counts
-- (a job past the delivery limit is then handed to the engine to be given up on, see take).
-- Reading, adding and removing are one step, so when several workers' pollers run at once each
-- due job is moved exactly once, and a crash mid-way moves none.
--
-- KEYS[1]  the vendor's delayed set         <prefix>{v:<vendor>}:delayed 
-- KEYS[2]  the vendor's stream              <prefix>{v:<vendor>}:stream 
-- ARGV[1]  consumer group name
-- ARGV[2]  how many due jobs to move at most
-- returns  how many jobs were moved
--
-- Members are "<deliveries so far>:<job id>"; due times are ms on the Redis server's clock.

local delayed = KEYS[1]
local stream = KEYS[2]

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = redis.call("ZRANGEBYSCORE", delayed, "-inf", now, "LIMIT", 0, tonumber(ARGV[2]))
if #due == 0 then return 0 end

-- See enqueue.lua: the group always exists with its stream.
if redis.call("EXISTS", stream) == 0 then
  redis.call("XGROUP", "CREATE", stream, ARGV[1], "0", "MKSTREAM")
end

for _, member in ipairs(due) do
  local deliveries, job_id = string.match(member, "^(%d+):(.+)$")
  if job_id ~= nil then
    redis.call("XADD", stream, "*", "jobId", job_id, "deliveries", deliveries)
  end
  redis.call("ZREM", delayed, member)
end
return #due
