-- promote: moves due jobs from the delayed set back into the stream (or, past the delivery
-- limit, into the dead-letter stream). Reading, adding and removing are one step, so when several
-- workers' pollers run at once each due job is moved exactly once, and a crash mid-way moves none.
--
-- KEYS[1]  the vendor's delayed set         <prefix>delayed:<vendor>
-- KEYS[2]  the vendor's stream              <prefix>stream:<vendor>
-- KEYS[3]  the vendor's dead-letter stream  <prefix>dead:<vendor>
-- ARGV[1]  consumer group name
-- ARGV[2]  how many due jobs to move at most
-- ARGV[3]  delivery limit
-- ARGV[4]  now, ISO-8601 (recorded on dead letters)
-- ARGV[5]  max length of the dead-letter stream (approximate)
-- returns  how many jobs were moved
--
-- Members are "<deliveries so far>:<job id>"; due times are ms on the Redis server's clock.

local delayed = KEYS[1]
local stream = KEYS[2]
local dead = KEYS[3]
local limit = tonumber(ARGV[3])

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
    if tonumber(deliveries) >= limit then
      redis.call("XADD", dead, "MAXLEN", "~", ARGV[5], "*",
        "jobId", job_id,
        "reason", "DeliveryLimit: not acknowledged after " .. deliveries .. " deliveries (limit " .. limit .. ")",
        "at", ARGV[4],
        "deliveries", deliveries)
    else
      redis.call("XADD", stream, "*", "jobId", job_id, "deliveries", deliveries)
    end
  end
  redis.call("ZREM", delayed, member)
end
return #due
