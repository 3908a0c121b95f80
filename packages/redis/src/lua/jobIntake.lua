-- jobIntake: stores a lot of new jobs and queues each in its vendor's stream, in one script (after
-- jobIndexes, jobCreate and enqueue, whose functions it calls), for a store and a queue on one
-- Redis: a lot of submissions costs one round trip, and a job is not stored without its stream
-- entry. Not on Redis Cluster, where the jobs' hashes and the vendors' streams lie in different
-- hash slots (a proxy that refuses such a script answers CROSSSLOT before it runs).
--
-- KEYS[1…s]   the vendors' streams                  <prefix>{v:<vendor>}:stream
-- KEYS[s+1…]  six per job, as jobCreate takes them, the jobs of the first stream's vendor first,
--             then the next's
-- ARGV[1]     consumer group name                   "workers"
-- ARGV[2]     the streams' max length, as enqueue takes it
-- ARGV[3]     s, how many streams
-- ARGV[4…3+s] how many jobs each stream's vendor has in the lot
-- ARGV[4+s…]  one group per job, as jobCreate takes them
-- returns     the ids of the jobs that exist already: those are neither written nor queued
--
-- A stream key of another type fails the script before it writes anything. A command that fails
-- midway all the same (an index key of another type, as in jobCreate) ends it: what was written
-- stays, and the submission fails with the error.

local group, maxLength, streams = ARGV[1], ARGV[2], tonumber(ARGV[3])
for v = 1, streams do
  local kind = redis.call("TYPE", KEYS[v])["ok"]
  if kind ~= "stream" and kind ~= "none" then
    return redis.error_reply("WRONGTYPE " .. KEYS[v] .. " is a " .. kind .. ", not a stream")
  end
end

local stored = {}
local existing = createJobs(streams + 1, streams + 4, stored)
local at = 1
for v = 1, streams do
  local ids = {}
  for k = at, at + tonumber(ARGV[3 + v]) - 1 do
    if stored[k] then ids[#ids + 1] = stored[k] end
  end
  at = at + tonumber(ARGV[3 + v])
  if #ids > 0 then enqueueJobs(KEYS[v], group, maxLength, ids, 1) end
end
return existing
