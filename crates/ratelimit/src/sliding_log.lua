-- The sliding-log rate limit (crates/ratelimit), as a function other scripts can include to
-- count a hit in the same step as their own work. Counts one hit of `key` against `max` per
-- `window` ms: trims hits older than the window; admits and logs this one if under the
-- limit ({1, remaining, 0}); otherwise says when the oldest hit leaves the window ({0, 0,
-- retry_ms}). Time comes from Redis (`TIME`), so replica clocks do not matter.
local function sliding_log_hit(key, window, max)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < max then
    -- Members must be unique: the microsecond clock plus the count (two hits in one
    -- microsecond see different counts, as scripts run one at a time).
    redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. ':' .. count)
    redis.call('PEXPIRE', key, window)
    return {1, max - count - 1, 0}
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, 0, math.max(1, tonumber(oldest[2]) + window - now)}
end
