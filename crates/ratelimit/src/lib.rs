//! Rate limits that hold across replicas: each check is one Lua script on the shared Redis
//! (atomic, so concurrent requests on different replicas cannot both take the last slot),
//! keeping a sliding log of the window's hits. Time comes from Redis (`TIME`), so replica
//! clocks do not matter.
//!
//! [`RateLimiter::hit`] counts every hit. [`RateLimiter::reserve`] checks several limits as
//! one and counts a hit in each, which [`RateLimiter::release`] can take back: how a limit
//! on *failures* is kept exact under concurrency (count the attempt first, forgive it once
//! it turned out to succeed).

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
    pub fn new(scope: &str, max: u32, window: Duration) -> Self {
        Self {
            scope: scope.to_owned(),
            max,
            window,
        }
    }

    pub fn per_minute(scope: &str, max: u32) -> Self {
        Self::new(scope, max, Duration::from_secs(60))
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

/// The answer of [`RateLimiter::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Every limit had room; one hit is now counted in each (see [`RateLimiter::release`]).
    Admitted(Reserved),
    /// At least one limit is full: nothing was counted. `retry_after` is when every full
    /// one has room again.
    Limited { retry_after: Duration },
}

/// Hits counted by [`RateLimiter::reserve`], one per limit: `(key, member)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reserved {
    hits: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: SharedConnection,
    prefix: String,
    script: redis::Script,
    reserve: redis::Script,
}

impl RateLimiter {
    pub fn new(pool: Pool, key_prefix: &str) -> Self {
        Self {
            redis: SharedConnection::new(pool),
            prefix: key_prefix.to_owned(),
            script: redis::Script::new(&format!(
                "{SLIDING_LOG_LUA}\nreturn sliding_log_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))"
            )),
            reserve: redis::Script::new(include_str!("reserve.lua")),
        }
    }

    fn key(&self, limit: &Limit, subject: &str) -> String {
        contracts::redis_keys::rate_limit(&self.prefix, &limit.scope, subject)
    }

    /// One hit of `subject` against `limit`, to count inside another script.
    pub fn prepare(&self, limit: &Limit, subject: &str) -> Hit {
        Hit {
            key: self.key(limit, subject),
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
    /// Checks every `(limit, subject)` as one: if any is full nothing is counted and the
    /// answer says when all have room; otherwise one hit is counted in each, atomically (so
    /// concurrent callers cannot overshoot any of them).
    pub async fn reserve(&self, limits: &[(&Limit, &str)]) -> anyhow::Result<Reservation> {
        if limits.is_empty() {
            return Ok(Reservation::Admitted(Reserved::default()));
        }
        let keys: Vec<String> = limits.iter().map(|(l, s)| self.key(l, s)).collect();
        let mut invocation = self.reserve.prepare_invoke();
        for (key, (limit, _)) in keys.iter().zip(limits) {
            invocation
                .key(key)
                .arg(u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX))
                .arg(limit.max);
        }
        let mut conn = self.redis.get().await?;
        let reply: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .inspect_err(|e| self.redis.failed(e))?;
        match reply.split_first() {
            Some((verdict, members)) if verdict == "admitted" && members.len() == keys.len() => {
                Ok(Reservation::Admitted(Reserved {
                    hits: keys.into_iter().zip(members.iter().cloned()).collect(),
                }))
            }
            Some((verdict, rest)) if verdict == "limited" => Ok(Reservation::Limited {
                retry_after: Hit::retry_after(
                    rest.first().and_then(|ms| ms.parse().ok()).unwrap_or(1),
                ),
            }),
            _ => Err(anyhow::anyhow!("unexpected rate-limit reply: {reply:?}")),
        }
    }

    /// Takes back the hits a [`reserve`](Self::reserve) counted (the attempt they stood
    /// for turned out not to count, e.g. a login that succeeded).
    pub async fn release(&self, reserved: &Reserved) -> anyhow::Result<()> {
        if reserved.hits.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, member) in &reserved.hits {
            pipe.cmd("ZREM").arg(key).arg(member).ignore();
        }
        let mut conn = self.redis.get().await?;
        pipe.query_async::<()>(&mut conn)
            .await
            .inspect_err(|e| self.redis.failed(e))?;
        Ok(())
    }

    /// Forgets every hit of `subject` against `limit`.
    pub async fn reset(&self, limit: &Limit, subject: &str) -> anyhow::Result<()> {
        let mut conn = self.redis.get().await?;
        redis::cmd("DEL")
            .arg(self.key(limit, subject))
            .query_async::<()>(&mut conn)
            .await
            .inspect_err(|e| self.redis.failed(e))?;
        Ok(())
    }
}
