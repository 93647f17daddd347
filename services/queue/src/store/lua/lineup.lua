-- POST /api/v1/queue/lineup. ARGV: member, capacity, channel, window_ms[, limit_window_ms,
-- limit_max]. Returns {state, position, flag, remaining}: {'admitted', 0, 1} already
-- admitted (timestamp refreshed, never re-queued); {'admitted', 0, 0} admitted now;
-- {'waiting', position, requeued} queued at the back (requeued = 1 when the member was
-- already waiting: the seed's refresh protection moves them behind everyone who is there
-- now).
-- With an 8th key, the request is first counted against that rate limit (the gateway's edge
-- leaves it to this script, saving a round trip; sliding_log_hit comes from the ratelimit
-- crate): over the limit → {'limited', retry_ms, 0, 0} and nothing else is done; otherwise
-- `remaining` is what the limit has left (-1 without a limit).
local remaining = -1
if KEYS[8] then
  local hit = sliding_log_hit(KEYS[8], tonumber(ARGV[5]), tonumber(ARGV[6]))
  if hit[1] == 0 then return {'limited', hit[3], 0, 0} end
  remaining = hit[2]
end
local member, capacity = ARGV[1], capacity_in_force(tonumber(ARGV[2]))
local now = now_ms()
if redis.call('HEXISTS', allowed, member) == 1 then
  redis.call('HSET', allowed, member, now)
  return {'admitted', 0, 1, remaining}
end
local requeued = redis.call('ZREM', wait, member)
-- Free slots go to those already waiting first, so a newcomer never jumps the queue.
fill(capacity, now, ARGV[3], tonumber(ARGV[4]))
if redis.call('ZCARD', wait) == 0 and free_slots(capacity) > 0 then
  redis.call('HSET', allowed, member, now)
  redis.call('ZREM', seen, member)
  return {'admitted', 0, 0, remaining}
end
local ticket = redis.call('INCR', counter)
redis.call('ZADD', wait, ticket, member)
redis.call('ZADD', seen, now, member)
-- The newest ticket is the highest score: the member is last.
return {'waiting', redis.call('ZCARD', wait), requeued, remaining}
