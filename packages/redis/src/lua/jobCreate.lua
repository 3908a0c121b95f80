-- jobCreate: stores new jobs, each as its hash plus its id in its status's sorted set and, when it
-- has an `overdueAt`, in the overdue index, unless a job with its id exists. One round trip on the
-- `POST /jobs` path, for one job (`create`) or a batch (`createMany`), and never a hash without
-- its set members (the listings and the sweeper would not find it) or a member without its hash.
--
-- For job i, from 1:
-- KEYS[3i-2]  its hash                      <prefix>job:<id>
-- KEYS[3i-1]  the sorted set of its status  <prefix>jobs:<status>
-- KEYS[3i]    the overdue index             <prefix>overdue
-- ARGV, one group per job, in the order of KEYS:
--   id (the set member), updatedAt in ms since the epoch (the member's score), overdueAt in ms
--   since the epoch (its score in the overdue index) or "" for none, n: how many hash fields, then
--   the 2n fields and values: field, value, field, value, …
-- returns  the ids of the jobs that exist already, for which nothing is written; the others are
--          stored (an empty list when all were). A command that fails ends the script with an
--          error: the jobs before it stay stored, the job it was writing and those after it are not.
--
-- A batch is one event-loop turn's submissions, a few hundred jobs at most: Redis takes any number
-- of arguments, and such a script holds Redis up for a few ms at most.

local existing = {}
local at = 1
for i = 1, #KEYS, 3 do
  local id, score, overdue = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local first = at + 4
  local last = first + 2 * tonumber(ARGV[at + 3]) - 1
  at = last + 1
  if redis.call("EXISTS", KEYS[i]) == 1 then
    existing[#existing + 1] = id
  else
    -- ZADDs first: they are the commands that can fail (a score that is not a number), and Redis
    -- does not undo a script's earlier writes when a later command fails; so a job is never half
    -- stored (an index member without its hash is skipped by the reads, and cleaned by the sweep).
    redis.call("ZADD", KEYS[i + 1], score, id)
    if overdue ~= "" then redis.call("ZADD", KEYS[i + 2], overdue, id) end
    redis.call("HSET", KEYS[i], unpack(ARGV, first, last))
  end
end
return existing
