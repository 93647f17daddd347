-- PUT /admin/queue/room/capacity. ARGV: capacity (0 = back to the configured one),
-- configured capacity, channel, window_ms. Sets or clears the override every replica's
-- scripts read, then fills the slots a raise opened in the same step (a cut admits no one
-- until enough admitted members leave; nobody is evicted). Returns {capacity, admitted}.
local wanted = tonumber(ARGV[1])
if wanted > 0 then
  redis.call('HSET', KEYS[7], 'capacity', wanted)
else
  redis.call('HDEL', KEYS[7], 'capacity')
end
local capacity = capacity_in_force(tonumber(ARGV[2]))
local admitted = fill(capacity, now_ms(), ARGV[3], tonumber(ARGV[4]))
return {capacity, #admitted}
