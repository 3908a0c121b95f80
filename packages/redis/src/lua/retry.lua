-- retry: acknowledges a delivery (while this consumer holds it, as `ack` does) and parks its job in
-- the delayed set until it is due. One step, so a crash between the two can neither lose the job
-- nor leave it both pending and parked.
--
-- KEYS[1]  the vendor's stream              <prefix>{v:<vendor>}:stream 
-- KEYS[2]  the vendor's delayed set         <prefix>{v:<vendor>}:delayed 
-- ARGV[1]  consumer group name
-- ARGV[2]  the delivery's entry id
-- ARGV[3]  delay, ms
-- ARGV[4]  member: "<deliveries so far>:<job id>"
-- ARGV[5]  this consumer's name
-- returns  the due time, ms since the epoch on the Redis server's clock
--
-- The due time comes from the server's clock, the same clock `promote` compares it with, so
-- clock skew between worker hosts cannot make a retry early or late. The job is parked even when
-- this consumer no longer holds the entry: the engine parks a job only after its own
-- compare-and-set moved the job to pending, so the job needs this delivery, and an extra one
-- starts no second attempt.

local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = now + tonumber(ARGV[3])
if #redis.call("XPENDING", KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[5]) > 0 then
  redis.call("XACK", KEYS[1], ARGV[1], ARGV[2])
end
redis.call("ZADD", KEYS[2], due, ARGV[4])
return due
