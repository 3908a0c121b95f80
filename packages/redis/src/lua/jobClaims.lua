-- jobClaims: claims pending jobs for new attempts without the caller reading them first, one after
-- the other, in one step (see jobIndexes, which comes before this): the engine's claims of the jobs
-- a worker took together. A claim applies only while its job is pending, of the vendor it names,
-- with fewer attempts than it allows; then it is jobTransitions' pending -> processing at the
-- job's current version: one more attempt, the lease as the new overdueAt, no nextRetryAt, the new
-- status and time, version + 1, the index members moved from pending's listing indexes to
-- processing's, the overdue score set. Of two processes racing on a job exactly one wins.
--
-- KEYS, ten per claim, in order:
--   the job's hash                                   <prefix>job:<id>
--   the four listing indexes of pending, in jobIndexes' order
--   the four listing indexes of processing
--   the overdue index, scored by overdueAt in ms     <prefix>overdue
-- ARGV, six per claim, in order:
--   1  job id
--   2  the vendor the job must be of
--   3  the attempts it must have fewer of
--   4  now, ISO 8601 (the new updatedAt)
--   5  the lease's end, ISO 8601 (the new overdueAt)
--   6  the same in ms since the epoch (its score in the overdue index)
-- returns  per claim: { the job's updatedAt before the claim, its hash after it as HGETALL returns
--          it }; an empty array when the job is missing or the claim does not apply (then nothing
--          is written); or one string, the problem, with nothing written for it, when the hash has
--          no integer version or attempts, or no updatedAt.
--
-- Nothing is written before every check that could fail has passed, as in jobTransitions: Redis
-- does not undo a script's earlier writes when a later command fails.

local function claim(job, pending, processing, overdue, a)
  local status, version, vendor, owner, before, attempts =
    unpack(redis.call("HMGET", job, "status", "version", "vendor", "owner", "updatedAt", "attempts"))
  if status ~= "pending" or vendor ~= a[2] then return {} end
  if not version or not string.match(version, "^%-?%d+$") or not attempts or not string.match(attempts, "^%d+$") then
    return { "the hash " .. job .. " has no integer version or attempts" }
  end
  if not before then return { "the hash " .. job .. " has no updatedAt" } end
  if tonumber(attempts) >= tonumber(a[3]) then return {} end

  for k, group in ipairs(jobGroups(vendor, owner)) do
    redis.call("ZREM", pending[k], group .. before .. ":" .. a[1])
    redis.call("ZADD", processing[k], 0, group .. a[4] .. ":" .. a[1])
  end
  redis.call("ZADD", overdue, a[6], a[1])
  redis.call("HINCRBY", job, "version", 1)
  redis.call("HINCRBY", job, "attempts", 1)
  redis.call("HSET", job, "status", "processing", "updatedAt", a[4], "overdueAt", a[5])
  redis.call("HDEL", job, "nextRetryAt")
  return { before, redis.call("HGETALL", job) }
end

local results = {}
for c = 0, #KEYS / 10 - 1 do
  local k = 10 * c
  results[c + 1] = claim(
    KEYS[k + 1],
    { KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5] },
    { KEYS[k + 6], KEYS[k + 7], KEYS[k + 8], KEYS[k + 9] },
    KEYS[k + 10],
    { unpack(ARGV, 6 * c + 1, 6 * c + 6) }
  )
end
return results
