-- A request to a protected route. ARGV: member. An admitted member's last-activity time is
-- refreshed and 1 returned; anyone else gets 0. One step, so an admission the scheduler is
-- expiring at this instant cannot be brought back to life.
if redis.call('HEXISTS', allowed, ARGV[1]) == 1 then
  redis.call('HSET', allowed, ARGV[1], now_ms())
  return 1
end
return 0
