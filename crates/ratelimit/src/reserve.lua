-- Several sliding logs checked and counted as one (RateLimiter::reserve). KEYS: the logs.
-- ARGV: for each key, its window (ms) then its max. Trims each log to its window; if any log
-- is at its max, counts nothing and answers {'limited', retry_ms} (when every full log has a free
-- slot again); otherwise logs one hit in every log and answers {'admitted', member_1, member_2, …}
-- (what RateLimiter::release takes back). Time comes from Redis (`TIME`).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local counts = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i - 1])
  local max = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  counts[i] = count
  if count >= max then
    -- The hit whose leaving brings the log below its max.
    local idx = count - max
    local oldest = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
    wait = math.max(wait, math.max(1, tonumber(oldest[2]) + window - now))
  end
end
if wait > 0 then return {'limited', tostring(wait)} end
local reply = {'admitted'}
for i, key in ipairs(KEYS) do
  -- Unique within the log: the microsecond clock plus the count (scripts run one at a time).
  local member = t[1] .. '.' .. t[2] .. ':' .. counts[i]
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, ARGV[2 * i - 1])
  reply[i + 1] = member
end
return reply
