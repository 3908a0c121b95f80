-- statsAdd: adds a process's counts into a statistics bucket, and keeps the bucket for its TTL.
--
-- KEYS[1]  the bucket                       <prefix>{v:<vendor>}:stats:<bucket index>
-- ARGV[1]  TTL, seconds
-- ARGV[2…] field, count, field, count, …
-- returns  how many fields were added to

for i = 2, #ARGV, 2 do
  redis.call("HINCRBY", KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call("EXPIRE", KEYS[1], ARGV[1])
return (#ARGV - 1) / 2
