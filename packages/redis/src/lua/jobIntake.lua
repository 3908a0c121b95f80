-- jobIntake: stores a vendor's new jobs and queues them, in one script (after jobIndexes, jobCreate
-- and enqueue, whose functions it calls), for a store and a queue on one Redis: a job is never
-- stored without its stream entry, and a lot of submissions costs one round trip. Not on Redis
-- Cluster, where the jobs' hashes and the vendor's stream lie in different hash slots.
--
-- KEYS[1]     the vendor's stream                   <prefix>{v:<vendor>}:stream
-- KEYS[2…]    six per job, as jobCreate takes them
-- ARGV[1]     consumer group name                   "workers"
-- ARGV[2]     the stream's max length, as enqueue takes it
-- ARGV[3…]    one group per job, as jobCreate takes them
-- returns     the ids of the jobs that exist already: those are neither written nor queued
--
-- Redis runs the script whole or not at all, short of a command that fails midway (a key of
-- another type, as in jobCreate): what was written stays, and the submission fails with the error.

local stored = {}
local existing = createJobs(2, 3, stored)
if #stored > 0 then enqueueJobs(KEYS[1], ARGV[1], ARGV[2], stored, 1) end
return existing
