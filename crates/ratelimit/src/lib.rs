//! Rate limits that hold across replicas: each check is one Lua script on the shared Redis
//! (atomic, so concurrent requests on different replicas cannot both take the last slot),
//! keeping a sliding log of the window's hits. Time comes from Redis (`TIME`), so replica
//! clocks do not matter.

use std::time::Duration;

use deadpool_redis::Pool;
use service_runtime::redis::SharedConnection;

/// Trim hits older than the window; admit and log this one if under the limit; otherwise
/// say when the oldest hit leaves the window.
const SLIDING_LOG: &str = r#"
local key = KEYS[1]
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < max then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
  return {1, max - count - 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, math.max(1, tonumber(oldest[2]) + window - now)}
"#;

/// A limit: at most `max` hits per `window`, counted separately per subject.
#[derive(Debug, Clone)]
pub struct Limit {
    /// Names the limit in keys and metrics, e.g. `login:ip`.
    pub scope: String,
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub fn per_minute(scope: &str, max: u32) -> Self {
        Self {
            scope: scope.to_owned(),
            max,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: SharedConnection,
    prefix: String,
    script: redis::Script,
}

impl RateLimiter {
    pub fn new(pool: Pool, key_prefix: &str) -> Self {
        Self {
            redis: SharedConnection::new(pool),
            prefix: key_prefix.to_owned(),
            script: redis::Script::new(SLIDING_LOG),
        }
    }

    /// Counts one hit of `subject` against `limit`.
    pub async fn hit(&self, limit: &Limit, subject: &str) -> anyhow::Result<Decision> {
        let mut conn = self.redis.get().await?;
        let key = contracts::redis_keys::rate_limit(&self.prefix, &limit.scope, subject);
        let (allowed, remaining, retry_ms): (i64, i64, i64) = self
            .script
            .key(key)
            .arg(u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX))
            .arg(limit.max)
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .invoke_async(&mut conn)
            .await
            .inspect_err(|e| self.redis.failed(e))?;
        Ok(if allowed == 1 {
            Decision::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(0),
            }
        } else {
            Decision::Limited {
                retry_after: Duration::from_millis(u64::try_from(retry_ms).unwrap_or(1)),
            }
        })
    }
}
