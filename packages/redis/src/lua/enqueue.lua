-- enqueue: adds new jobs to a vendor's stream, one entry each, in order, and then, once the stream
-- is longer than its max length, trims the entries that the consumer group is done with. Never
-- trims an entry that is unacknowledged. Defines `enqueueJobs`, which the scripts that queue new
-- jobs call: `enqueue` and `enqueueMany` (`return enqueueJobs(KEYS[1], ARGV[1], ARGV[2], ARGV, 3)`)
-- and jobIntake.
--
-- enqueueJobs(stream, group, maxLength, ids, from) takes:
--   stream     the vendor's stream              <prefix>{v:<vendor>}:stream
--   group      consumer group name              "workers"
--   maxLength  trimming starts past it (never below the group's oldest unacknowledged entry)
--   ids        a list whose entries from `from` on are the job ids
-- returns      how many entries were added
--
-- A batch is one event-loop turn's submissions for the vendor, a few hundred at most: Redis takes
-- any number of arguments, and an XADD each holds Redis up for well under a ms in all.
--
-- Why not plain `XADD MAXLEN ~ N`: MAXLEN counts every entry, acknowledged or not, so a backlog
-- longer than N would lose jobs nobody has read yet. Here the trim point is MINID = the oldest
-- entry the group still needs: the smallest id in its pending list (delivered, not acknowledged),
-- else its last-delivered-id (everything after it is undelivered). Every entry below that point
-- has been delivered and acknowledged; `~` lets Redis drop only whole macro nodes, which is cheap.

local function entryIdLess(a, b)
  local ams, aseq = string.match(a, "^(%d+)-(%d+)$")
  local bms, bseq = string.match(b, "^(%d+)-(%d+)$")
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end

local function enqueueJobs(stream, group, maxLength, ids, from)
  -- The group is created with the stream so that no entry is ever added to a stream without it
  -- (a group created later from "$" would skip what is already there; "0" delivers it all).
  if redis.call("EXISTS", stream) == 0 then
    redis.call("XGROUP", "CREATE", stream, group, "0", "MKSTREAM")
  end

  -- New jobs, so no deliveries so far; `promote` adds retries, with their counts, itself.
  for i = from, #ids do
    redis.call("XADD", stream, "*", "jobId", ids[i], "deliveries", "0")
  end

  if redis.call("XLEN", stream) > tonumber(maxLength) then
    local last_delivered = nil
    for _, info in ipairs(redis.call("XINFO", "GROUPS", stream)) do
      local fields = {}
      for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
      if fields["name"] == group then last_delivered = fields["last-delivered-id"] end
    end
    if last_delivered then
      local keep_from = last_delivered
      local pending = redis.call("XPENDING", stream, group)
      if pending[1] > 0 and entryIdLess(pending[2], keep_from) then keep_from = pending[2] end
      redis.call("XTRIM", stream, "MINID", "~", keep_from)
    end
  end

  return #ids - from + 1
end
