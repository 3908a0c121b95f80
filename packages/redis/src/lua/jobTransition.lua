-- jobTransition: a job's compare-and-set. Only while the job is in status ARGV[2] (and at version
-- ARGV[4], when given): writes the fields to set, deletes the fields to unset, records the new
-- status and time, adds one to the version, and moves the id from the old status's sorted set to
-- the new one's. One step, so of two processes racing on a job exactly one wins, and the sets
-- always agree with the hashes.
--
-- KEYS[1]  the job's hash                   <prefix>job:<id>
-- KEYS[2]  the sorted set it leaves         <prefix>jobs:<from>
-- KEYS[3]  the sorted set it enters         <prefix>jobs:<to>   (the same key when from = to)
-- ARGV[1]  job id (the set member)
-- ARGV[2]  from: the status the job must be in
-- ARGV[3]  to: the new status
-- ARGV[4]  the version the job must be at, or "" for any
-- ARGV[5]  now, ISO-8601 (the new updatedAt)
-- ARGV[6]  now, ms since the epoch (the member's new score)
-- ARGV[7]  TTL, ms: > 0 when `to` is finished and finished jobs expire, else 0
-- ARGV[8]  "1" when the job leaves a finished status (its hash must stop expiring), else "0"
-- ARGV[9]  n: how many fields to set
-- ARGV[10 … 9+2n]  the fields to set and their values: field, value, …
-- ARGV[10+2n …]    the fields to delete
-- returns  the job's hash after the change, as HGETALL returns it; nil when the job is missing or
--          not in the expected status and version (then nothing is written); an error, with
--          nothing written, when the hash has no integer version
--
-- Times come from the caller's clock, as in every other store, so a test clock drives them too.

local job = KEYS[1]
if redis.call("HGET", job, "status") ~= ARGV[2] then return nil end
local version = redis.call("HGET", job, "version")
if ARGV[4] ~= "" and version ~= ARGV[4] then return nil end

-- Redis does not undo a script's earlier writes when a later command fails, so whatever can fail
-- on what is stored is checked or done before the hash is touched: a version that HINCRBY would
-- refuse, a set key of another type.
if not version or not string.match(version, "^%-?%d+$") then
  return redis.error_reply("the hash " .. job .. " has no integer version")
end
if KEYS[2] ~= KEYS[3] then redis.call("ZREM", KEYS[2], ARGV[1]) end
redis.call("ZADD", KEYS[3], ARGV[6], ARGV[1])
redis.call("HINCRBY", job, "version", 1)

local n = tonumber(ARGV[9])
local fields = { "status", ARGV[3], "updatedAt", ARGV[5] }
for i = 10, 9 + 2 * n do table.insert(fields, ARGV[i]) end
redis.call("HSET", job, unpack(fields))
-- Deleted after setting: a field both set and unset ends up unset, as in core's applyTransition.
if #ARGV >= 10 + 2 * n then redis.call("HDEL", job, unpack(ARGV, 10 + 2 * n)) end

local ttl = tonumber(ARGV[7])
if ttl > 0 then
  redis.call("PEXPIRE", job, ttl)
  -- Members scored more than a TTL ago belong to hashes that have expired by now (give or take the
  -- skew between the callers' clocks and Redis's). Trimming them on each entry into a finished set
  -- keeps that set from growing without bound, a few members at a time.
  redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", "(" .. string.format("%d", tonumber(ARGV[6]) - ttl))
elseif ARGV[8] == "1" then
  -- A failed job sent round again must not expire while it is pending or processing.
  redis.call("PERSIST", job)
end

return redis.call("HGETALL", job)
