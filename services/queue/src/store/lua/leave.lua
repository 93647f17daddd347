-- DELETE /allowed-in-token ('allowed'), DELETE /waiting-token ('waiting'), logout ('both').
-- ARGV: member, which, capacity, channel, window_ms. Whoever leaves the allowed set frees a
-- slot that goes to the head of the queue in the same step (seed: "admit as many as were
-- removed"). Returns {left_allowed, left_waiting, admitted_from_queue}.
local member, which, capacity = ARGV[1], ARGV[2], capacity_in_force(tonumber(ARGV[3]))
local now = now_ms()
local left_allowed, left_waiting = 0, 0
if which ~= 'waiting' then
  left_allowed = redis.call('HDEL', allowed, member)
end
if which ~= 'allowed' then
  left_waiting = redis.call('ZREM', wait, member)
  redis.call('ZREM', seen, member)
end
local admitted = fill(capacity, now, ARGV[4], tonumber(ARGV[5]))
return {left_allowed, left_waiting, #admitted}
