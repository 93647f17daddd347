-- One scheduler tick, run by at most one replica per lock period (ShedLock-style: the
-- lock is taken with NX and an expiry, and is not released early, so a replica whose timer
-- fires a moment later finds it held). ARGV: instance, lock_ms, capacity, duration_ms,
-- abandon_ms, channel, window_ms.
-- Returns {ran, expired, abandoned, admitted, waiting, allowed}.
local lock, stats = KEYS[6], KEYS[7]
if not redis.call('SET', lock, ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, 0, 0, 0, 0, 0}
end
local capacity = capacity_in_force(tonumber(ARGV[3]))
local duration, abandon = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
-- Admissions idle for the whole duration leave.
local expired = 0
local entries = redis.call('HGETALL', allowed)
for i = 1, #entries, 2 do
  local last = tonumber(entries[i + 1])
  if last == nil or now - last >= duration then
    redis.call('HDEL', allowed, entries[i])
    expired = expired + 1
  end
end
-- Waiting members with no stream and no polling for abandon_ms are ghosts: drop them so
-- the head of the queue cannot stall on someone who closed the tab.
local ghosts = redis.call('ZRANGEBYSCORE', seen, '-inf', now - abandon)
for _, m in ipairs(ghosts) do
  redis.call('ZREM', wait, m)
  redis.call('ZREM', seen, m)
end
local admitted = fill(capacity, now, ARGV[6], tonumber(ARGV[7]))
redis.call('HINCRBY', stats, 'runs', 1)
redis.call('HSET', stats, 'last_instance', ARGV[1], 'last_run_ms', now)
return {1, expired, #ghosts, #admitted, redis.call('ZCARD', wait), redis.call('HLEN', allowed)}
