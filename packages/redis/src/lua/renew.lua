-- renew: keeps deliveries with this consumer while it runs their jobs: the entries it still holds
-- are claimed again by itself (XCLAIM with a minimum idle time of 0), which resets their idle time,
-- so `reclaim` does not hand them to another consumer. JUSTID leaves their delivery counters as
-- they are. An entry another consumer reclaimed meanwhile stays with that one.
--
-- KEYS[1]   the vendor's stream              <prefix>{v:<vendor>}:stream 
-- ARGV[1]   consumer group name
-- ARGV[2]   this consumer's name
-- ARGV[3…]  the deliveries' entry ids
-- returns   how many entries were renewed

local claim = { KEYS[1], ARGV[1], ARGV[2], 0 }
for i = 3, #ARGV do
  if #redis.call("XPENDING", KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
    claim[#claim + 1] = ARGV[i]
  end
end
if #claim == 4 then return 0 end
claim[#claim + 1] = "JUSTID"
return #redis.call("XCLAIM", unpack(claim))
