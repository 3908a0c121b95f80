-- workersBeat: records a worker's heartbeat and forgets workers silent for long.
--
-- KEYS[1]  the workers' last beats, a hash: id -> JSON      <prefix>{workers}:beats
-- KEYS[2]  when each worker last beat, a sorted set (ms)   <prefix>{workers}:seen
-- ARGV[1]  worker id
-- ARGV[2]  the beat as JSON
-- ARGV[3]  now (ms)
-- ARGV[4]  forget workers last seen before this (ms)
-- returns  the number of workers forgotten

redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
local stale = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[4])
for _, id in ipairs(stale) do
  redis.call("HDEL", KEYS[1], id)
end
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[4])
return #stale
