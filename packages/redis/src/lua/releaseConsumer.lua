-- releaseConsumer: removes this process's consumer from the group when it shuts down, but only
-- if it holds no pending entries: XGROUP DELCONSUMER drops a consumer's pending entries, and then
-- nobody could reclaim them. A consumer that still holds some stays; its entries are reclaimed
-- after the visibility timeout like those of a crashed worker.
--
-- KEYS[1]  the vendor's stream              <prefix>{v:<vendor>}:stream 
-- ARGV[1]  consumer group name
-- ARGV[2]  this consumer's name
-- returns  1 when the consumer was removed, else 0

if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
local ok, pending = pcall(redis.call, "XPENDING", KEYS[1], ARGV[1], "-", "+", 1, ARGV[2])
if not ok or #pending > 0 then return 0 end
redis.call("XGROUP", "DELCONSUMER", KEYS[1], ARGV[1], ARGV[2])
return 1
