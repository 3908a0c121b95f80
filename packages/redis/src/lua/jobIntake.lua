-- jobIntake: stores a lot of new jobs and queues each in its vendor's stream, in one script (after
-- jobIndexes, jobCreate and enqueue, whose functions it calls), for a store and a queue on one
-- Redis: a lot of submissions costs one round trip. Not on Redis Cluster, where the jobs' hashes
-- and the vendors' streams lie in different hash slots (a proxy that refuses such a script answers
-- CROSSSLOT before it runs).
--
-- KEYS[1…s]   the vendors' streams                  <prefix>{v:<vendor>}:stream
-- KEYS[s+1…]  six per job, as jobCreate takes them, the jobs of the first stream's vendor first,
--             then the next's
-- ARGV[1]     consumer group name                   "workers"
-- ARGV[2]     the streams' max length, as enqueue takes it
-- ARGV[3]     s, how many streams
-- ARGV[4…3+s] how many jobs each stream's vendor has in the lot
-- ARGV[4+s…]  one group per job, as jobCreate takes them
-- returns     { the ids of the jobs that exist already (neither written nor queued),
--               { stream index, error } for each stream whose queue write failed after its
--               vendor's jobs were stored (they stay stored, as with two writes) }
--
-- A command of the store's that fails (an index key of another type) ends the script as in
-- jobCreate: what was written stays, and the submission fails with the error.

local group, maxLength, streams = ARGV[1], ARGV[2], tonumber(ARGV[3])
local stored = {}
local existing = createJobs(streams + 1, streams + 4, stored)
local unqueued = {}
local at = 1
for v = 1, streams do
  local ids = {}
  for k = at, at + tonumber(ARGV[3 + v]) - 1 do
    if stored[k] then ids[#ids + 1] = stored[k] end
  end
  at = at + tonumber(ARGV[3 + v])
  if #ids > 0 then
    local ok, err = pcall(enqueueJobs, KEYS[v], group, maxLength, ids, 1)
    if not ok then unqueued[#unqueued + 1] = { v, type(err) == "table" and err.err or tostring(err) } end
  end
end
return { existing, unqueued }
