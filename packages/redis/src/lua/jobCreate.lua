-- jobCreate: stores new jobs, each as its hash plus its members in the listing indexes of its status
-- (see jobIndexes, which comes before this) and, when it has an `overdueAt`, in the overdue index,
-- unless a job with its id exists. Defines `createJobs`, which the scripts that store jobs call:
-- `create` and `createMany` (`return createJobs(1, 1)`) and jobIntake. Never a hash without its
-- index members (the sweeper and the listings would not find it).
--
-- createJobs(firstKey, firstArg, stored) reads, for job i from 0:
-- KEYS[firstKey+6i]          its hash                                   <prefix>job:<id>
-- KEYS[firstKey+6i+1…+4]     the four listing indexes of its status, in jobIndexes' order (the two
--                            by owner are left alone for a job without an owner)
-- KEYS[firstKey+6i+5]        the overdue index                          <prefix>overdue
-- and from ARGV[firstArg] on, one group per job, in the order of KEYS:
--   id, updatedAt (ISO 8601), vendor, "1" when it has an owner else "0", the owner (or ""), its
--   overdueAt in ms since the epoch (its score in the overdue index) or "" for none, n: how many
--   hash fields, then the 2n fields and values: field, value, field, value, …
-- The jobs' keys run to the end of KEYS.
-- returns the ids of the jobs that exist already, for which nothing is written; the others are
--         stored (an empty list when all were). When `stored` is given, each job in turn appends
--         to it its id if it was stored, else false.
--         A command that fails ends the script with an error: the jobs before it stay stored, the
--         job it was writing and those after it are not (at worst an index member without its hash,
--         which the readers skip).
--
-- A batch is one event-loop turn's submissions, a few hundred jobs at most: Redis takes any number
-- of arguments, and such a script holds Redis up for a few ms at most.

local function createJobs(firstKey, firstArg, stored)
  local existing = {}
  local at = firstArg
  for i = firstKey, #KEYS, 6 do
    local id, updatedAt, vendor = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    local owner = ARGV[at + 3] == "1" and ARGV[at + 4]
    local overdue = ARGV[at + 5]
    local first = at + 7
    local last = first + 2 * tonumber(ARGV[at + 6]) - 1
    at = last + 1
    if redis.call("EXISTS", KEYS[i]) == 1 then
      existing[#existing + 1] = id
      if stored then stored[#stored + 1] = false end
    else
      -- The index members first: ZADD is what can fail (a key of another type), and Redis does not
      -- undo a script's earlier writes when a later command fails; so a hash is never unlisted.
      for k, group in ipairs(jobGroups(vendor, owner)) do
        redis.call("ZADD", KEYS[i + k], 0, group .. updatedAt .. ":" .. id)
      end
      if overdue ~= "" then redis.call("ZADD", KEYS[i + 5], overdue, id) end
      redis.call("HSET", KEYS[i], unpack(ARGV, first, last))
      if stored then stored[#stored + 1] = id end
    end
  end
  return existing
end
