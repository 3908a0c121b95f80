-- jobGetMany: reads some fields of several jobs' hashes in one round trip, for `getMany` (the
-- `GET /jobs/{id}` reads of one event-loop turn, a take's first look at its jobs) and the listings.
-- It only reads, so it is a script for the one round trip alone.
--
-- KEYS[1…n]  the jobs' hashes               <prefix>job:<id>   (a key may repeat)
-- ARGV       the fields to read
-- returns    one reply per key, in the order of KEYS: the fields' values as HMGET returns them, in
--            the order of ARGV, nil where a field (or the whole hash) does not exist
--
-- A batch is one event-loop turn's reads, or one page of a listing, a few hundred at most: an HMGET
-- each holds Redis up for well under a ms in all.

local replies = {}
for i = 1, #KEYS do
  replies[i] = redis.call("HMGET", KEYS[i], unpack(ARGV))
end
return replies
