-- deadLetter: records a job given up on as a dead letter and acknowledges the delivery it came in
-- (while this consumer holds it, as `ack` does), in one step, so a crash can neither leave the
-- entry pending (and delivered again) after it was recorded, nor acknowledge it without the
-- record. A job given up on outside any delivery (a callback that never came) names no entry.
--
-- KEYS[1]  the vendor's stream              <prefix>{v:<vendor>}:stream 
-- KEYS[2]  the vendor's dead-letter stream  <prefix>{v:<vendor>}:dead 
-- ARGV[1]  consumer group name
-- ARGV[2]  the delivery's entry id, or "" for none
-- ARGV[3]  job id
-- ARGV[4]  reason
-- ARGV[5]  at, ISO-8601
-- ARGV[6]  the delivery's delivery count
-- ARGV[7]  max length of the dead-letter stream (approximate)
-- ARGV[8]  this consumer's name
-- returns  the dead letter's entry id

local id = redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[7], "*",
  "jobId", ARGV[3],
  "reason", ARGV[4],
  "at", ARGV[5],
  "deliveries", ARGV[6],
  "entry", ARGV[2])
if ARGV[2] ~= "" and #redis.call("XPENDING", KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[8]) > 0 then
  redis.call("XACK", KEYS[1], ARGV[1], ARGV[2])
end
return id
