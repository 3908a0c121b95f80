-- rateDelay: a call went later than its slot allowed: the slots not handed out yet move on by as
-- much. Core's `RateLimitStore.delayed`, in one step (nothing to move in a state that is gone).
--
-- KEYS[1]  the vendor's rate state (hash)  <prefix>{v:<vendor>}:rate:state
-- ARGV[1]  how far, ms

if redis.call("EXISTS", KEYS[1]) == 1 then redis.call("HINCRBYFLOAT", KEYS[1], "next", ARGV[1]) end
return 1
