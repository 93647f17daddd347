-- Shared by every waiting-room script (prepended in Rust). KEYS are always, in order:
-- 1 queue:wait (zset member -> ticket), 2 queue:counter, 3 allowedIn:users (hash member ->
-- last activity ms), 4 queue:seen (zset waiting member -> last sign of life ms),
-- 5 queue:admission_log (zset of recent admissions from the queue, for the wait estimate),
-- 6 queue:scheduler:lock, 7 queue:scheduler:stats (also the room's run-time settings).
local wait, counter, allowed, seen, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

-- The capacity in force: an operator's override (field `capacity` of KEYS[7], set through
-- PUT /admin/queue/room/capacity, shared by every replica) or the configured one.
local function capacity_in_force(configured)
  return tonumber(redis.call('HGET', KEYS[7], 'capacity')) or configured
end

-- Redis' clock, so replica clocks never matter.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function free_slots(capacity)
  return capacity - redis.call('HLEN', allowed)
end

-- Admits up to n members from the head of the queue, in ticket order; logs each admission
-- for the wait estimate and announces the ids to every gateway replica in the same step.
local function promote(n, now, channel, window_ms)
  if n <= 0 then return {} end
  local heads = redis.call('ZRANGE', wait, 0, n - 1)
  if #heads == 0 then return heads end
  for _, m in ipairs(heads) do
    redis.call('HSET', allowed, m, now)
    redis.call('ZREM', wait, m)
    redis.call('ZREM', seen, m)
    redis.call('ZADD', log, now, m .. ':' .. now)
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window_ms)
  redis.call('PUBLISH', channel, table.concat(heads, ','))
  return heads
end

-- Fills every free slot from the head of the queue.
local function fill(capacity, now, channel, window_ms)
  local n = math.min(free_slots(capacity), redis.call('ZCARD', wait))
  return promote(n, now, channel, window_ms)
end
