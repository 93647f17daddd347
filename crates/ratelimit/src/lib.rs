//! Rate limits that hold across replicas: each check is one Lua script on the shared Redis
//! (atomic, so concurrent requests on different replicas cannot both take the last slot),
//! keeping a sliding log of the window's hits. Time comes from Redis (`TIME`), so replica
//! clocks do not matter.

use std::time::Duration;

use deadpool_redis::Pool;
use service_runtime::redis::SharedConnection;

/// The sliding log as a Lua function, `sliding_log_hit(key, window_ms, max)` returning
/// `{allowed, remaining, retry_ms}`, for a script that counts a hit in the same step as its
/// own work (one round trip instead of two; see [`Hit`]). Prepend it to the script's body.
pub const SLIDING_LOG_LUA: &str = include_str!("sliding_log.lua");

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

/// A hit to be counted by another script that includes [`SLIDING_LOG_LUA`]: pass `key` as
/// one of its keys and `window_ms`, `max` as arguments to `sliding_log_hit`, and read its
/// reply with [`Hit::decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub key: String,
    pub window_ms: u64,
    pub max: u32,
}

impl Hit {
    /// The decision in `sliding_log_hit`'s reply `{allowed, remaining, retry_ms}`.
    pub fn decision((allowed, remaining, retry_ms): (i64, i64, i64)) -> Decision {
        if allowed == 1 {
            Decision::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(0),
            }
        } else {
            Decision::Limited {
                retry_after: Self::retry_after(retry_ms),
            }
        }
    }

    /// The wait in a refusal's `retry_ms`.
    pub fn retry_after(retry_ms: i64) -> Duration {
        Duration::from_millis(u64::try_from(retry_ms).unwrap_or(1))
    }
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
            script: redis::Script::new(&format!(
                "{SLIDING_LOG_LUA}\nreturn sliding_log_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))"
            )),
        }
    }

    /// One hit of `subject` against `limit`, to count inside another script.
    pub fn prepare(&self, limit: &Limit, subject: &str) -> Hit {
        Hit {
            key: contracts::redis_keys::rate_limit(&self.prefix, &limit.scope, subject),
            window_ms: u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX),
            max: limit.max,
        }
    }

    /// Counts one hit of `subject` against `limit`.
    pub async fn hit(&self, limit: &Limit, subject: &str) -> anyhow::Result<Decision> {
        let hit = self.prepare(limit, subject);
        let mut conn = self.redis.get().await?;
        let reply: (i64, i64, i64) = self
            .script
            .key(&hit.key)
            .arg(hit.window_ms)
            .arg(hit.max)
            .invoke_async(&mut conn)
            .await
            .inspect_err(|e| self.redis.failed(e))?;
        Ok(Hit::decision(reply))
    }
}
