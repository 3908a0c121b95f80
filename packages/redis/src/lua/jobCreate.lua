-- jobCreate: stores a new job's hash and adds its id to its status's sorted set, in one step,
-- unless a job with that id exists. One round trip on the `POST /jobs` path, and never a hash
-- without its set member (the sweepers would not find it) or a member without its hash.
--
-- KEYS[1]  the job's hash                   <prefix>job:<id>
-- KEYS[2]  the sorted set of its status     <prefix>jobs:<status>
-- ARGV[1]  job id (the set member)
-- ARGV[2]  updatedAt, ms since the epoch (the member's score)
-- ARGV[3…] the hash's fields and values: field, value, field, value, …
-- returns  1 when the job was stored, 0 when a job with that id exists (nothing is written)

if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
-- ZADD first: it is the command that can fail (a score that is not a number), and Redis does not
-- undo a script's earlier writes when a later command fails.
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[1])
redis.call("HSET", KEYS[1], unpack(ARGV, 3))
return 1
