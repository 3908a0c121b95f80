-- jobTransitions: jobs' compare-and-sets, one after the other, in one step. Each applies only while
-- its job is in the status it names (and at the version it names, when given): writes the fields
-- to set, deletes the fields to unset, records the new status and time, adds one to the version,
-- moves the id from the old status's sorted set to the new one's, and keeps the job's place in the
-- overdue index in step with its `overdueAt`. Of two processes racing on a job exactly one wins, and
-- the sets always agree with the hashes. The engine's transitions that
-- are made together (the claims, or the completions, of a take's jobs) arrive here together.
--
-- KEYS, four per transition, in order:
--   the job's hash                   <prefix>job:<id>
--   the sorted set it leaves         <prefix>jobs:<from>
--   the sorted set it enters         <prefix>jobs:<to>   (the same key when from = to)
--   the overdue index                <prefix>overdue
-- ARGV, per transition, in order: how many arguments follow for it, then
--   1  job id (the set member)
--   2  from: the status the job must be in
--   3  to: the new status
--   4  the version the job must be at, or "" for any
--   5  now, ISO-8601 (the new updatedAt)
--   6  now, ms since the epoch (the member's new score)
--   7  TTL, ms: > 0 when `to` is finished and finished jobs expire, else 0
--   8  "1" when the job leaves a finished status (its hash must stop expiring), else "0"
--   9  the job's score in the overdue index: ms since the epoch when the transition sets
--      `overdueAt`, "-" when it deletes it (always when `to` is finished), "" to leave it
--   10 n: how many fields to set
--   11 … 10+2n  the fields to set and their values: field, value, …
--   11+2n …     the fields to delete
-- returns  per transition: the job's hash after the change, as HGETALL returns it; an empty array
--          when the job is missing or not in the expected status and version (then nothing is
--          written); or one string, the problem, with nothing written for it, when the hash has no
--          integer version. A valid hash always has an even, non-zero number of entries.
--
-- Times come from the caller's clock, as in every other store, so a test clock drives them too.

local function transition(job, fromSet, toSet, overdueSet, a)
  if redis.call("HGET", job, "status") ~= a[2] then return {} end
  local version = redis.call("HGET", job, "version")
  if a[4] ~= "" and version ~= a[4] then return {} end

  -- Redis does not undo a script's earlier writes when a later command fails, so whatever can fail
  -- on what is stored is checked or done before the hash is touched: a version that HINCRBY would
  -- refuse, a set key of another type.
  if not version or not string.match(version, "^%-?%d+$") then
    return { "the hash " .. job .. " has no integer version" }
  end
  if fromSet ~= toSet then redis.call("ZREM", fromSet, a[1]) end
  redis.call("ZADD", toSet, a[6], a[1])
  if a[9] == "-" then
    redis.call("ZREM", overdueSet, a[1])
  elseif a[9] ~= "" then
    redis.call("ZADD", overdueSet, a[9], a[1])
  end
  redis.call("HINCRBY", job, "version", 1)

  local n = tonumber(a[10])
  local fields = { "status", a[3], "updatedAt", a[5] }
  for i = 11, 10 + 2 * n do table.insert(fields, a[i]) end
  redis.call("HSET", job, unpack(fields))
  -- Deleted after setting: a field both set and unset ends up unset, as in core's applyTransition.
  if #a >= 11 + 2 * n then redis.call("HDEL", job, unpack(a, 11 + 2 * n)) end

  local ttl = tonumber(a[7])
  if ttl > 0 then
    redis.call("PEXPIRE", job, ttl)
    -- Members scored more than a TTL ago belong to hashes that have expired by now (give or take
    -- the skew between the callers' clocks and Redis's). Trimming them on each entry into a
    -- finished set keeps that set from growing without bound, a few members at a time.
    redis.call("ZREMRANGEBYSCORE", toSet, "-inf", "(" .. string.format("%d", tonumber(a[6]) - ttl))
  elseif a[8] == "1" then
    -- A failed job sent round again must not expire while it is pending or processing.
    redis.call("PERSIST", job)
  end

  return redis.call("HGETALL", job)
end

local results = {}
local at = 1
for t = 0, #KEYS / 4 - 1 do
  local count = tonumber(ARGV[at])
  local k = 4 * t
  results[t + 1] = transition(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], { unpack(ARGV, at + 1, at + count) })
  at = at + 1 + count
end
return results
