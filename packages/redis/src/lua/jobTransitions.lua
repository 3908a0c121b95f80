-- jobTransitions: jobs' compare-and-sets, one after the other, in one step (see jobIndexes, which
-- comes before this). Each applies only while its job is in the status it names (and at the version
-- it names, when given): writes the fields to set, deletes the fields to unset, records the new
-- status and time, adds one to the version, moves the job's index members from the old status's
-- listing indexes to the new one's, under its new time, and keeps its place in the overdue index in
-- step with its `overdueAt`. Of two processes racing on a job exactly one wins, and the indexes
-- always agree with the hashes. The engine's transitions that are made
-- together (the claims, or the completions, of a take's jobs) arrive here together.
--
-- KEYS, ten per transition, in order:
--   the job's hash                                   <prefix>job:<id>
--   the four listing indexes of the status it leaves, in jobIndexes' order
--   the four listing indexes of the status it enters (the same keys when from = to)
--   the overdue index, scored by overdueAt in ms     <prefix>overdue
-- ARGV, per transition, in order: how many arguments follow for it, then
--   1  job id
--   2  from: the status the job must be in
--   3  to: the new status
--   4  the version the job must be at, or "" for any
--   5  now, ISO 8601 (the new updatedAt)
--   6  TTL, ms: > 0 when `to` is finished and finished jobs expire, else 0
--   7  when the TTL is on: now - TTL, ISO 8601; index members older than it belong to expired
--      hashes. Else ""
--   8  "1" when the job leaves a finished status (its hash must stop expiring), else "0"
--   9  the job's score in the overdue index: ms since the epoch when the transition sets
--      `overdueAt`, "-" when it deletes it (always when `to` is finished), "" to leave it
--   10 n: how many fields to set
--   11 … 10+2n  the fields to set and their values: field, value, …
--   11+2n …     the fields to delete
-- returns  per transition: the job's hash after the change, as HGETALL returns it; an empty array
--          when the job is missing or not in the expected status and version (then nothing is
--          written); or one string, the problem, with nothing written for it, when the hash has no
--          integer version, vendor or updatedAt. A valid hash always has an even, non-zero number
--          of entries.
--
-- Times come from the caller's clock, as in every other store, so a test clock drives them too.

local function transition(job, leaving, entering, overdue, a)
  local status, version, vendor, owner, before =
    unpack(redis.call("HMGET", job, "status", "version", "vendor", "owner", "updatedAt"))
  if status ~= a[2] then return {} end
  if a[4] ~= "" and version ~= a[4] then return {} end

  -- Redis does not undo a script's earlier writes when a later command fails, so whatever can fail
  -- on what is stored is checked or done before the hash is touched: a version that HINCRBY would
  -- refuse, an index key of another type.
  if not version or not string.match(version, "^%-?%d+$") then
    return { "the hash " .. job .. " has no integer version" }
  end
  if not vendor or not before then return { "the hash " .. job .. " has no vendor or updatedAt" } end
  local groups = jobGroups(vendor, owner)
  for k, group in ipairs(groups) do
    redis.call("ZREM", leaving[k], group .. before .. ":" .. a[1])
    redis.call("ZADD", entering[k], 0, group .. a[5] .. ":" .. a[1])
  end
  if a[9] == "-" then
    redis.call("ZREM", overdue, a[1])
  elseif a[9] ~= "" then
    redis.call("ZADD", overdue, a[9], a[1])
  end
  redis.call("HINCRBY", job, "version", 1)

  local n = tonumber(a[10])
  local fields = { "status", a[3], "updatedAt", a[5] }
  for i = 11, 10 + 2 * n do table.insert(fields, a[i]) end
  redis.call("HSET", job, unpack(fields))
  -- Deleted after setting: a field both set and unset ends up unset, as in core's applyTransition.
  if #a >= 11 + 2 * n then redis.call("HDEL", job, unpack(a, 11 + 2 * n)) end

  local ttl = tonumber(a[6])
  if ttl > 0 then
    redis.call("PEXPIRE", job, ttl)
    -- Members of this job's groups from before now - TTL belong to hashes that have expired by now
    -- (give or take the skew between the callers' clocks and Redis's). Trimming them on each entry
    -- into a finished status keeps its indexes from growing without bound, a few members at a time.
    for k, group in ipairs(groups) do
      redis.call("ZREMRANGEBYLEX", entering[k], group == "" and "-" or "[" .. group, "(" .. group .. a[7])
    end
  elseif a[8] == "1" then
    -- A failed job sent round again must not expire while it is pending or processing.
    redis.call("PERSIST", job)
  end

  return redis.call("HGETALL", job)
end

local results = {}
local at = 1
for t = 0, #KEYS / 10 - 1 do
  local count = tonumber(ARGV[at])
  local k = 10 * t
  results[t + 1] = transition(
    KEYS[k + 1],
    { KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5] },
    { KEYS[k + 6], KEYS[k + 7], KEYS[k + 8], KEYS[k + 9] },
    KEYS[k + 10],
    { unpack(ARGV, at + 1, at + count) }
  )
  at = at + 1 + count
end
return results
