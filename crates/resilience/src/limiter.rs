//! The client-side rate limit: governor's GCRA over `limit_for_period` calls per
//! `refresh_period`, and resilience4j's `timeout-duration` as the longest a call may wait
//! for a permit. A call that would have to wait longer is refused at once, not after
//! waiting in vain.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};

use crate::settings::RateLimitSettings;

pub(crate) struct RateLimiter {
    gcra: DefaultDirectRateLimiter,
    max_wait: Duration,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A burst of up to `limit_for_period` calls, refilled at `limit_for_period` per
    /// `refresh_period` (one every `refresh_period / limit_for_period`).
    pub fn new(settings: &RateLimitSettings) -> Result<Self, String> {
        let limit = NonZeroU32::new(settings.limit_for_period)
            .ok_or("the rate limit must allow at least one call per period")?;
        let quota = Quota::with_period(settings.refresh_period / limit.get())
            .ok_or("the rate-limit period is too short for its limit")?
            .allow_burst(limit);
        Ok(Self {
            gcra: DefaultDirectRateLimiter::direct(quota),
            max_wait: settings.max_wait,
        })
    }

    /// Takes a permit, waiting up to `max_wait` for one; `false` when none came in time.
    pub async fn acquire(&self) -> bool {
        let deadline = Instant::now() + self.max_wait;
        loop {
            let Err(not_until) = self.gcra.check() else {
                return true;
            };
            let wait = not_until.wait_time_from(self.gcra.clock().now());
            if Instant::now() + wait > deadline {
                return false;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn limiter(limit: u32, period_ms: u64, wait_ms: u64) -> RateLimiter {
        RateLimiter::new(&RateLimitSettings {
            limit_for_period: limit,
            refresh_period: Duration::from_millis(period_ms),
            max_wait: Duration::from_millis(wait_ms),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn refuses_beyond_the_limit_without_waiting() {
        let limiter = limiter(3, 60_000, 0);
        for _ in 0..3 {
            assert!(limiter.acquire().await);
        }
        let started = Instant::now();
        assert!(!limiter.acquire().await);
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn waits_for_a_permit_within_the_allowed_wait() {
        // One permit every 100 ms; a caller may wait 500 ms.
        let limiter = limiter(1, 100, 500);
        assert!(limiter.acquire().await);
        let started = Instant::now();
        assert!(limiter.acquire().await);
        assert!(
            started.elapsed() >= Duration::from_millis(80),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn refuses_at_once_when_the_permit_is_further_than_the_wait() {
        let limiter = limiter(1, 60_000, 100);
        assert!(limiter.acquire().await);
        let started = Instant::now();
        assert!(!limiter.acquire().await);
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn a_zero_limit_is_refused() {
        let settings = RateLimitSettings {
            limit_for_period: 0,
            refresh_period: Duration::from_secs(1),
            max_wait: Duration::ZERO,
        };
        assert!(RateLimiter::new(&settings).is_err());
    }
}
