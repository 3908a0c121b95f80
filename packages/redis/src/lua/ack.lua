-- ack: acknowledges the deliveries this consumer still holds, in one step. An entry its consumer
-- stopped renewing past the visibility timeout may have been reclaimed by another consumer, which
-- may still be running the job; that entry is the other consumer's to acknowledge, so a late
-- acknowledgement from the first leaves it pending. A crash at any line leaves each entry either
-- acknowledged or still pending with its holder.
--
-- KEYS[1]   the vendor's stream              <prefix>{v:<vendor>}:stream 
-- ARGV[1]   consumer group name
-- ARGV[2]   this consumer's name
-- ARGV[3…]  the deliveries' entry ids
-- returns   how many entries were acknowledged

local acked = 0
for i = 3, #ARGV do
  -- XPENDING with a consumer lists the entry only while that consumer holds it.
  if #redis.call("XPENDING", KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
    acked = acked + redis.call("XACK", KEYS[1], ARGV[1], ARGV[i])
  end
end
return acked
