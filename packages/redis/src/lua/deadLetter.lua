-- deadLetter: records a delivery as a dead letter and acknowledges it, in one step, so a crash
-- can neither leave the entry pending (and delivered again) after it was recorded, nor
-- acknowledge it without the record.
--
-- KEYS[1]  the vendor's stream              <prefix>stream:<vendor>
-- KEYS[2]  the vendor's dead-letter stream  <prefix>dead:<vendor>
-- ARGV[1]  consumer group name
-- ARGV[2]  the delivery's entry id
-- ARGV[3]  job id
-- ARGV[4]  reason
-- ARGV[5]  at, ISO-8601
-- ARGV[6]  the delivery's delivery count
-- ARGV[7]  max length of the dead-letter stream (approximate)
-- returns  the dead letter's entry id

local id = redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[7], "*",
  "jobId", ARGV[3],
  "reason", ARGV[4],
  "at", ARGV[5],
  "deliveries", ARGV[6],
  "entry", ARGV[2])
redis.call("XACK", KEYS[1], ARGV[1], ARGV[2])
return id
