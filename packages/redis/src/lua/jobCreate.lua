-- jobCreate: stores new jobs, each as its hash plus its members in the listing indexes of its status
-- (see jobIndexes, which comes before this), unless a job with its id exists. One round trip on the
-- `POST /jobs` path, for one job (`create`) or a batch (`createMany`), and never a hash without its
-- index members (the sweepers and the listings would not find it).
--
-- For job i, from 0:
-- KEYS[5i+1]     its hash                                   <prefix>job:<id>
-- KEYS[5i+2…5i+5] the four listing indexes of its status, in jobIndexes' order (the two by owner are
--                 left alone for a job without an owner)
-- ARGV, one group per job, in the order of KEYS:
--   id, updatedAt (ISO 8601), vendor, "1" when it has an owner else "0", the owner (or ""),
--   n: how many hash fields, then the 2n fields and values: field, value, field, value, …
-- returns  the ids of the jobs that exist already, for which nothing is written; the others are
--          stored (an empty list when all were). A command that fails ends the script with an
--          error: the jobs before it stay stored, the job it was writing and those after it are not
--          (at worst an index member without its hash, which the readers skip).
--
-- A batch is one event-loop turn's submissions, a few hundred jobs at most: Redis takes any number
-- of arguments, and such a script holds Redis up for a few ms at most.

local existing = {}
local at = 1
for i = 1, #KEYS, 5 do
  local id, updatedAt, vendor = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local owner = ARGV[at + 3] == "1" and ARGV[at + 4]
  local first = at + 6
  local last = first + 2 * tonumber(ARGV[at + 5]) - 1
  at = last + 1
  if redis.call("EXISTS", KEYS[i]) == 1 then
    existing[#existing + 1] = id
  else
    -- The index members first: ZADD is what can fail (a key of another type), and Redis does not
    -- undo a script's earlier writes when a later command fails; so a hash is never unlisted.
    for k, group in ipairs(jobGroups(vendor, owner)) do
      redis.call("ZADD", KEYS[i + k], 0, group .. updatedAt .. ":" .. id)
    end
    redis.call("HSET", KEYS[i], unpack(ARGV, first, last))
  end
end
return existing
