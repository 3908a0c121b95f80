-- jobGetMany: reads several jobs' hashes in one round trip, for `getMany` (the `GET /jobs/{id}`
-- reads of one event-loop turn). It only reads, so it is a script for the one round trip alone.
--
-- KEYS[1…n]  the jobs' hashes               <prefix>job:<id>   (a key may repeat)
-- returns    one reply per key, in the order of KEYS: the hash as HGETALL returns it, field, value,
--            field, value, …; an empty list where the hash does not exist
--
-- A batch is one event-loop turn's reads, a few hundred at most: an HGETALL each holds Redis up for
-- well under a ms in all.

local hashes = {}
for i = 1, #KEYS do
  hashes[i] = redis.call("HGETALL", KEYS[i])
end
return hashes
