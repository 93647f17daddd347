-- Where members stand: GET /status (one member) and the SSE position tick (every member
-- connected to this replica, in batches). ARGV: window_ms, member... Returns
-- {waiting_total, admitted_from_queue_in_window, s1, s2, ...} with s = 0 admitted,
-- -1 neither waiting nor admitted, n > 0 position in the queue. Asking counts as a sign of
-- life for a waiting member (abandonment).
local now = now_ms()
local window = tonumber(ARGV[1])
local out = {redis.call('ZCARD', wait), redis.call('ZCOUNT', log, now - window, '+inf')}
for i = 2, #ARGV do
  local m = ARGV[i]
  if redis.call('HEXISTS', allowed, m) == 1 then
    out[#out + 1] = 0
  else
    local rank = redis.call('ZRANK', wait, m)
    if rank then
      redis.call('ZADD', seen, now, m)
      out[#out + 1] = rank + 1
    else
      out[#out + 1] = -1
    end
  end
end
return out
