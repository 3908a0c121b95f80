-- reclaim: claims entries that sat unacknowledged past the visibility timeout (their consumer is
-- presumed dead) for this consumer, with each one's delivery count. Claiming and counting are one
-- step, so two workers reclaiming at once cannot both get an entry. Whether a count is past the
-- delivery limit is the caller's to judge: it hands such a job to the engine to be given up on.
--
-- KEYS[1]  the vendor's stream              <prefix>{v:<vendor>}:stream 
-- ARGV[1]  consumer group name
-- ARGV[2]  this consumer's name
-- ARGV[3]  visibility timeout, ms (minimum idle time of an entry to reclaim)
-- ARGV[4]  how many entries to claim at most
-- ARGV[5]  XAUTOCLAIM cursor to start from ("0-0" for the start of the pending list)
-- returns  { next cursor, { { entry id, job id, delivery count }, ... } }
--
-- A job's delivery count is the `deliveries` field of its entry (deliveries before this entry
-- existed, i.e. earlier retries) plus the entry's own delivery counter from XPENDING, which
-- XAUTOCLAIM has just incremented.

local stream = KEYS[1]
local group = ARGV[1]

local claimed = redis.call("XAUTOCLAIM", stream, group, ARGV[2], ARGV[3], ARGV[5], "COUNT", ARGV[4])
local out = {}
for _, entry in ipairs(claimed[2]) do
  local id = entry[1]
  local fields = {}
  -- An entry deleted from the stream while pending comes back without fields; there is nothing
  -- left to deliver.
  if type(entry[2]) == "table" then
    for i = 1, #entry[2], 2 do fields[entry[2][i]] = entry[2][i + 1] end
  end
  if fields["jobId"] == nil then
    redis.call("XACK", stream, group, id)
  else
    local info = redis.call("XPENDING", stream, group, id, id, 1)
    local count = (tonumber(fields["deliveries"]) or 0) + (info[1] and tonumber(info[1][4]) or 1)
    table.insert(out, { id, fields["jobId"], count })
  end
end
return { claimed[1], out }
