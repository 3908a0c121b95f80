-- jobIndexes: put before jobCreate and jobTransitions, which share it: the members a job has in the
-- listing indexes of its status.
--
-- An index is a sorted set whose members all score 0, so Redis keeps them in byte order and
-- ZRANGEBYLEX / ZREVRANGEBYLEX seek in it. A member is a group (the values the index is by, each
-- written as its length in bytes, ":", itself, ":"; so no group is the start of another), then the
-- job's updatedAt, ":", its id. updatedAt is ISO 8601 in toISOString's fixed-width form, so its text
-- sorts as time does: one group's members form one range, in the order of the job list (newest
-- last, ties by id). A listing by owner or vendor is then a seek, whatever the other jobs are.
--
-- The indexes of a status, in the order of their keys (RedisJobStore's `keys.indexes`):
--   1  all its jobs           group: none           <prefix>jobs:<status>
--   2  by vendor              group: vendor         <prefix>jobs:<status>:vendor
--   3  by owner               group: owner          <prefix>jobs:<status>:owner         (owned jobs)
--   4  by owner and vendor    group: owner, vendor  <prefix>jobs:<status>:owner-vendor  (owned jobs)

local function groupOf(...)
  local group = ""
  for _, value in ipairs({ ... }) do group = group .. #value .. ":" .. value .. ":" end
  return group
end

-- A job's groups, one per index it is in, in the order of the indexes; `owner` is false when the
-- job has none.
local function jobGroups(vendor, owner)
  if not owner then return { "", groupOf(vendor) } end
  return { "", groupOf(vendor), groupOf(owner), groupOf(owner, vendor) }
end

