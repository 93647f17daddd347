//! How one downstream is called: the seed's three tiers as presets, and the
//! `<DOWNSTREAM>_CLIENT_*` environment variables that pick a tier and override any number.
//!
//! The numbers come from seed 003, "Case (8) resilience4j feign" (rate limiter, retry and
//! circuit breaker tiers) and "Case (5) VirtualService" (timeouts). Where the seed names a
//! tier but gives no number, the value is ours; `docs/resilience.md` says which is which.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use service_runtime::config::{ConfigError, EnvSource, parse_or, ranged_or};

/// How much protection a downstream gets. Seed 003 assigns `critical` to member and
/// timeline, `default` to content and activity, `conservative` to image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Downstreams on the user's path (member, timeline): more throughput, fast retries,
    /// a breaker that notices trouble early and probes again soon.
    Critical,
    /// Everything else (content, activity).
    Default,
    /// Heavy downstreams that must not be flooded (image): a low rate, few retries.
    Conservative,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Critical, Tier::Default, Tier::Conservative];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "critical",
            Tier::Default => "default",
            Tier::Conservative => "conservative",
        }
    }

    /// The tier seed 003 gives a downstream service by name; `default` for any other.
    pub fn for_downstream(downstream: &str) -> Tier {
        match downstream.to_ascii_lowercase().as_str() {
            "member" | "timeline" => Tier::Critical,
            "image" => Tier::Conservative,
            _ => Tier::Default,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Tier::Critical),
            "default" => Ok(Tier::Default),
            "conservative" => Ok(Tier::Conservative),
            other => Err(format!(
                "`{other}` is not a tier (critical, default, conservative)"
            )),
        }
    }
}

/// Everything about calling one downstream.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// The preset these numbers started from.
    pub tier: Tier,
    /// `<P>_TIMEOUT_MS`: one attempt, from connecting to the last byte of the body.
    pub timeout: Duration,
    /// `<P>_DEADLINE_MS`: the whole call, every attempt and backoff included. No retry
    /// starts that could not begin before it; the last attempt's timeout is cut to fit.
    pub deadline: Duration,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub rate_limit: RateLimitSettings,
}

/// Retry with exponential backoff and jitter, for retriable failures only (connect errors,
/// timeouts, 502/503/504) of idempotent requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// `<P>_RETRY_MAX_ATTEMPTS`: attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// `<P>_RETRY_BACKOFF_MS`: the wait before the first retry.
    pub initial_backoff: Duration,
    /// `<P>_RETRY_BACKOFF_MULTIPLIER`: each further wait is the previous one times this.
    pub multiplier: f64,
    /// `<P>_RETRY_MAX_BACKOFF_MS`: no wait grows beyond this.
    pub max_backoff: Duration,
    /// `<P>_RETRY_JITTER`: each wait is drawn uniformly from `wait × (1 ± jitter)`, so
    /// replicas that failed together do not retry together.
    pub jitter: f64,
}

/// A count-based circuit breaker, as resilience4j's `COUNT_BASED` sliding window.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// `<P>_CB_WINDOW_SIZE`: the last N calls the rates are computed over.
    pub window_size: u32,
    /// `<P>_CB_MINIMUM_CALLS`: no verdict before this many calls are in the window.
    pub minimum_calls: u32,
    /// `<P>_CB_FAILURE_RATE`: open when at least this % of the window failed.
    pub failure_rate_threshold: u8,
    /// `<P>_CB_SLOW_CALL_RATE`: open when at least this % of the window was slow.
    pub slow_call_rate_threshold: u8,
    /// `<P>_CB_SLOW_CALL_MS`: a call taking at least this long is slow.
    pub slow_call_duration: Duration,
    /// `<P>_CB_OPEN_WAIT_MS`: how long an open breaker rejects before it lets probes through
    /// (half-open). The move happens by itself when the wait ends.
    pub wait_in_open: Duration,
    /// `<P>_CB_HALF_OPEN_CALLS`: probes let through when half-open; their rates decide
    /// between closed and open again.
    pub half_open_calls: u32,
}

/// A client-side rate limit (GCRA, via `governor`): `limit_for_period` calls per
/// `refresh_period`, as resilience4j's `limit-for-period` / `limit-refresh-period`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    /// `<P>_RATE_LIMIT`: calls allowed per period.
    pub limit_for_period: u32,
    /// `<P>_RATE_PERIOD_MS`: the period.
    pub refresh_period: Duration,
    /// `<P>_RATE_WAIT_MS`: how long a call may wait for a permit before it is rejected
    /// (resilience4j's `timeout-duration`; 0 = reject at once).
    pub max_wait: Duration,
}

impl ClientSettings {
    /// The tier's numbers, unchanged.
    pub fn preset(tier: Tier) -> Self {
        match tier {
            Tier::Critical => Self {
                tier,
                timeout: Duration::from_secs(3),
                deadline: Duration::from_secs(10),
                retry: RetrySettings {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(100),
                    multiplier: 2.0,
                    max_backoff: Duration::from_secs(1),
                    jitter: 0.5,
                },
                breaker: BreakerSettings {
                    window_size: 50,
                    minimum_calls: 5,
                    failure_rate_threshold: 40,
                    slow_call_rate_threshold: 70,
                    slow_call_duration: Duration::from_secs(3),
                    wait_in_open: Duration::from_secs(30),
                    half_open_calls: 5,
                },
                rate_limit: RateLimitSettings {
                    limit_for_period: 200,
                    refresh_period: Duration::from_secs(1),
                    max_wait: Duration::from_millis(100),
                },
            },
            Tier::Default => Self {
                tier,
                timeout: Duration::from_secs(3),
                deadline: Duration::from_secs(10),
                retry: RetrySettings {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(500),
                    multiplier: 2.0,
                    max_backoff: Duration::from_secs(2),
                    jitter: 0.5,
                },
                breaker: BreakerSettings {
                    window_size: 100,
                    minimum_calls: 10,
                    failure_rate_threshold: 50,
                    slow_call_rate_threshold: 80,
                    slow_call_duration: Duration::from_secs(5),
                    wait_in_open: Duration::from_secs(60),
                    half_open_calls: 10,
                },
                rate_limit: RateLimitSettings {
                    limit_for_period: 100,
                    refresh_period: Duration::from_secs(1),
                    max_wait: Duration::ZERO,
                },
            },
            Tier::Conservative => Self {
                tier,
                timeout: Duration::from_secs(10),
                deadline: Duration::from_secs(30),
                retry: RetrySettings {
                    max_attempts: 2,
                    initial_backoff: Duration::from_secs(1),
                    multiplier: 2.0,
                    max_backoff: Duration::from_secs(4),
                    jitter: 0.5,
                },
                breaker: BreakerSettings {
                    window_size: 100,
                    minimum_calls: 10,
                    failure_rate_threshold: 30,
                    slow_call_rate_threshold: 60,
                    slow_call_duration: Duration::from_secs(8),
                    wait_in_open: Duration::from_secs(60),
                    half_open_calls: 3,
                },
                rate_limit: RateLimitSettings {
                    limit_for_period: 50,
                    refresh_period: Duration::from_secs(1),
                    max_wait: Duration::ZERO,
                },
            },
        }
    }

    /// Settings for `downstream` from `<DOWNSTREAM>_CLIENT_*` variables: the tier from
    /// `<DOWNSTREAM>_CLIENT_TIER` (else `default_tier`), then each number overridden by its
    /// own variable when set. A malformed or out-of-range value is an error naming it.
    pub fn from_env(
        env: &dyn EnvSource,
        downstream: &str,
        default_tier: Tier,
    ) -> Result<Self, ConfigError> {
        let var = EnvNames::new(downstream);
        let tier = parse_or(env, &var.name("TIER"), default_tier)?;
        let preset = Self::preset(tier);
        let retry = RetrySettings {
            max_attempts: ranged_or(
                env,
                &var.name("RETRY_MAX_ATTEMPTS"),
                preset.retry.max_attempts,
                1..=10,
            )?,
            initial_backoff: millis_or(
                env,
                &var.name("RETRY_BACKOFF_MS"),
                preset.retry.initial_backoff,
                0..=60_000,
            )?,
            multiplier: ranged_or(
                env,
                &var.name("RETRY_BACKOFF_MULTIPLIER"),
                preset.retry.multiplier,
                1.0..=10.0,
            )?,
            max_backoff: millis_or(
                env,
                &var.name("RETRY_MAX_BACKOFF_MS"),
                preset.retry.max_backoff,
                0..=300_000,
            )?,
            jitter: ranged_or(
                env,
                &var.name("RETRY_JITTER"),
                preset.retry.jitter,
                0.0..=1.0,
            )?,
        };
        let breaker = BreakerSettings {
            window_size: ranged_or(
                env,
                &var.name("CB_WINDOW_SIZE"),
                preset.breaker.window_size,
                1..=10_000,
            )?,
            minimum_calls: ranged_or(
                env,
                &var.name("CB_MINIMUM_CALLS"),
                preset.breaker.minimum_calls,
                1..=10_000,
            )?,
            failure_rate_threshold: ranged_or(
                env,
                &var.name("CB_FAILURE_RATE"),
                preset.breaker.failure_rate_threshold,
                1..=100,
            )?,
            slow_call_rate_threshold: ranged_or(
                env,
                &var.name("CB_SLOW_CALL_RATE"),
                preset.breaker.slow_call_rate_threshold,
                1..=100,
            )?,
            slow_call_duration: millis_or(
                env,
                &var.name("CB_SLOW_CALL_MS"),
                preset.breaker.slow_call_duration,
                1..=600_000,
            )?,
            wait_in_open: millis_or(
                env,
                &var.name("CB_OPEN_WAIT_MS"),
                preset.breaker.wait_in_open,
                1..=3_600_000,
            )?,
            half_open_calls: ranged_or(
                env,
                &var.name("CB_HALF_OPEN_CALLS"),
                preset.breaker.half_open_calls,
                1..=1_000,
            )?,
        };
        let rate_limit = RateLimitSettings {
            limit_for_period: ranged_or(
                env,
                &var.name("RATE_LIMIT"),
                preset.rate_limit.limit_for_period,
                1..=1_000_000,
            )?,
            refresh_period: millis_or(
                env,
                &var.name("RATE_PERIOD_MS"),
                preset.rate_limit.refresh_period,
                1..=3_600_000,
            )?,
            max_wait: millis_or(
                env,
                &var.name("RATE_WAIT_MS"),
                preset.rate_limit.max_wait,
                0..=60_000,
            )?,
        };
        Ok(Self {
            tier,
            timeout: millis_or(env, &var.name("TIMEOUT_MS"), preset.timeout, 1..=600_000)?,
            deadline: millis_or(
                env,
                &var.name("DEADLINE_MS"),
                preset.deadline,
                1..=3_600_000,
            )?,
            retry,
            breaker,
            rate_limit,
        })
    }
}

impl ClientSettings {
    /// Rejects numbers no environment variable could set but code could: a zero timeout,
    /// an empty window, no half-open probes (which would keep the breaker open forever),
    /// thresholds outside 1–100 %, a zero rate limit.
    pub fn validate(&self) -> Result<(), String> {
        let b = &self.breaker;
        let checks = [
            (self.timeout.is_zero(), "the timeout must be above zero"),
            (self.deadline.is_zero(), "the deadline must be above zero"),
            (
                self.retry.max_attempts == 0,
                "retry max attempts must be at least 1",
            ),
            (
                !(1.0..=10.0).contains(&self.retry.multiplier),
                "the backoff multiplier must be between 1 and 10",
            ),
            (
                !(0.0..=1.0).contains(&self.retry.jitter),
                "the jitter must be between 0 and 1",
            ),
            (
                b.window_size == 0,
                "the breaker window must hold at least one call",
            ),
            (
                b.minimum_calls == 0,
                "the breaker minimum calls must be at least 1",
            ),
            (
                b.half_open_calls == 0,
                "the breaker must let at least one half-open probe through",
            ),
            (
                !(1..=100).contains(&b.failure_rate_threshold),
                "the failure-rate threshold must be between 1 and 100",
            ),
            (
                !(1..=100).contains(&b.slow_call_rate_threshold),
                "the slow-call-rate threshold must be between 1 and 100",
            ),
            (
                self.rate_limit.limit_for_period == 0,
                "the rate limit must allow at least one call per period",
            ),
            (
                self.rate_limit.refresh_period.is_zero(),
                "the rate-limit period must be above zero",
            ),
        ];
        match checks.into_iter().find(|(bad, _)| *bad) {
            Some((_, reason)) => Err(reason.to_owned()),
            None => Ok(()),
        }
    }
}

impl RetrySettings {
    /// The wait before retry number `retry` (1 = the first retry), before jitter:
    /// `initial × multiplier^(retry-1)`, capped at `max_backoff`.
    pub fn base_backoff(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let cap = self.max_backoff.as_secs_f64();
        // `min` also tames an overflow to infinity.
        Duration::from_secs_f64(grown.min(cap).max(0.0))
    }

    /// [`Self::base_backoff`] spread by the jitter, `unit` being a uniform draw in `[0, 1]`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let base = self.base_backoff(retry).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter + 2.0 * jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((base * factor).max(0.0))
    }
}

/// The variable names for one downstream: `member` → `MEMBER_CLIENT_*`.
pub struct EnvNames {
    prefix: String,
}

impl EnvNames {
    pub fn new(downstream: &str) -> Self {
        let upper: String = downstream
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            prefix: format!("{upper}_CLIENT_"),
        }
    }

    /// The full name of one setting, e.g. `name("TIMEOUT_MS")` → `MEMBER_CLIENT_TIMEOUT_MS`.
    pub fn name(&self, setting: &str) -> String {
        format!("{}{setting}", self.prefix)
    }
}

/// A whole number of milliseconds in `range`, or `default` when unset.
fn millis_or(
    env: &dyn EnvSource,
    name: &str,
    default: Duration,
    range: RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    ranged_or(env, name, default_ms, range).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use test_harness::vars as env;

    #[test]
    fn presets_carry_the_seed_numbers() {
        let critical = ClientSettings::preset(Tier::Critical);
        assert_eq!(critical.rate_limit.limit_for_period, 200);
        assert_eq!(critical.rate_limit.max_wait, Duration::from_millis(100));
        assert_eq!(critical.breaker.window_size, 50);
        assert_eq!(critical.breaker.minimum_calls, 5);
        assert_eq!(critical.breaker.failure_rate_threshold, 40);
        assert_eq!(critical.breaker.slow_call_rate_threshold, 70);
        assert_eq!(critical.breaker.slow_call_duration, Duration::from_secs(3));
        assert_eq!(critical.breaker.wait_in_open, Duration::from_secs(30));
        assert_eq!(critical.breaker.half_open_calls, 5);

        let default = ClientSettings::preset(Tier::Default);
        assert_eq!(default.rate_limit.limit_for_period, 100);
        assert_eq!(default.rate_limit.refresh_period, Duration::from_secs(1));
        assert_eq!(default.rate_limit.max_wait, Duration::ZERO);
        assert_eq!(default.retry.max_attempts, 3);
        assert_eq!(default.retry.initial_backoff, Duration::from_millis(500));
        assert_eq!(default.breaker.window_size, 100);
        assert_eq!(default.breaker.minimum_calls, 10);
        assert_eq!(default.breaker.failure_rate_threshold, 50);
        assert_eq!(default.breaker.slow_call_rate_threshold, 80);
        assert_eq!(default.breaker.slow_call_duration, Duration::from_secs(5));
        assert_eq!(default.breaker.wait_in_open, Duration::from_secs(60));
        assert_eq!(default.breaker.half_open_calls, 10);

        let conservative = ClientSettings::preset(Tier::Conservative);
        assert_eq!(conservative.rate_limit.limit_for_period, 50);
        assert_eq!(conservative.rate_limit.max_wait, Duration::ZERO);
        assert_eq!(conservative.timeout, Duration::from_secs(10));
        assert!(conservative.retry.max_attempts < default.retry.max_attempts);
    }

    #[test]
    fn seed_assigns_tiers_by_service() {
        assert_eq!(Tier::for_downstream("member"), Tier::Critical);
        assert_eq!(Tier::for_downstream("timeline"), Tier::Critical);
        assert_eq!(Tier::for_downstream("content"), Tier::Default);
        assert_eq!(Tier::for_downstream("activity"), Tier::Default);
        assert_eq!(Tier::for_downstream("image"), Tier::Conservative);
        assert_eq!(Tier::for_downstream("search"), Tier::Default);
    }

    #[test]
    fn nothing_set_gives_the_default_tier_preset() {
        let settings = ClientSettings::from_env(&env(&[]), "member", Tier::Critical).unwrap();
        assert_eq!(settings, ClientSettings::preset(Tier::Critical));
    }

    #[test]
    fn tier_variable_picks_another_preset() {
        let settings = ClientSettings::from_env(
            &env(&[("MEMBER_CLIENT_TIER", " Conservative ")]),
            "member",
            Tier::Critical,
        )
        .unwrap();
        assert_eq!(settings, ClientSettings::preset(Tier::Conservative));
    }

    #[test]
    fn every_override_applies_on_top_of_the_tier() {
        let settings = ClientSettings::from_env(
            &env(&[
                ("IMAGE_CLIENT_TIER", "default"),
                ("IMAGE_CLIENT_TIMEOUT_MS", "750"),
                ("IMAGE_CLIENT_DEADLINE_MS", "2000"),
                ("IMAGE_CLIENT_RETRY_MAX_ATTEMPTS", "5"),
                ("IMAGE_CLIENT_RETRY_BACKOFF_MS", "20"),
                ("IMAGE_CLIENT_RETRY_BACKOFF_MULTIPLIER", "3"),
                ("IMAGE_CLIENT_RETRY_MAX_BACKOFF_MS", "90"),
                ("IMAGE_CLIENT_RETRY_JITTER", "0"),
                ("IMAGE_CLIENT_CB_WINDOW_SIZE", "20"),
                ("IMAGE_CLIENT_CB_MINIMUM_CALLS", "4"),
                ("IMAGE_CLIENT_CB_FAILURE_RATE", "25"),
                ("IMAGE_CLIENT_CB_SLOW_CALL_RATE", "90"),
                ("IMAGE_CLIENT_CB_SLOW_CALL_MS", "1500"),
                ("IMAGE_CLIENT_CB_OPEN_WAIT_MS", "5000"),
                ("IMAGE_CLIENT_CB_HALF_OPEN_CALLS", "2"),
                ("IMAGE_CLIENT_RATE_LIMIT", "7"),
                ("IMAGE_CLIENT_RATE_PERIOD_MS", "250"),
                ("IMAGE_CLIENT_RATE_WAIT_MS", "15"),
            ]),
            "image",
            Tier::Conservative,
        )
        .unwrap();
        let expected = ClientSettings {
            tier: Tier::Default,
            timeout: Duration::from_millis(750),
            deadline: Duration::from_secs(2),
            retry: RetrySettings {
                max_attempts: 5,
                initial_backoff: Duration::from_millis(20),
                multiplier: 3.0,
                max_backoff: Duration::from_millis(90),
                jitter: 0.0,
            },
            breaker: BreakerSettings {
                window_size: 20,
                minimum_calls: 4,
                failure_rate_threshold: 25,
                slow_call_rate_threshold: 90,
                slow_call_duration: Duration::from_millis(1500),
                wait_in_open: Duration::from_secs(5),
                half_open_calls: 2,
            },
            rate_limit: RateLimitSettings {
                limit_for_period: 7,
                refresh_period: Duration::from_millis(250),
                max_wait: Duration::from_millis(15),
            },
        };
        assert_eq!(settings, expected);
    }

    #[test]
    fn overrides_are_per_downstream() {
        let vars = env(&[("CONTENT_CLIENT_TIMEOUT_MS", "42")]);
        let member = ClientSettings::from_env(&vars, "member", Tier::Critical).unwrap();
        assert_eq!(member.timeout, Duration::from_secs(3));
        let content = ClientSettings::from_env(&vars, "content", Tier::Default).unwrap();
        assert_eq!(content.timeout, Duration::from_millis(42));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("MEMBER_CLIENT_TIER", "urgent"),
            ("MEMBER_CLIENT_TIMEOUT_MS", "3s"),
            ("MEMBER_CLIENT_TIMEOUT_MS", "0"),
            ("MEMBER_CLIENT_RETRY_MAX_ATTEMPTS", "0"),
            ("MEMBER_CLIENT_RETRY_BACKOFF_MULTIPLIER", "0.5"),
            ("MEMBER_CLIENT_RETRY_JITTER", "NaN"),
            ("MEMBER_CLIENT_CB_FAILURE_RATE", "101"),
            ("MEMBER_CLIENT_CB_SLOW_CALL_RATE", "-1"),
            ("MEMBER_CLIENT_CB_WINDOW_SIZE", "many"),
            ("MEMBER_CLIENT_RATE_LIMIT", "0"),
            ("MEMBER_CLIENT_RATE_WAIT_MS", "soon"),
        ];
        for (name, value) in cases {
            let err = ClientSettings::from_env(&env(&[(name, value)]), "member", Tier::Critical)
                .expect_err(name);
            assert_eq!(err.var, name, "{value}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn presets_are_valid_and_broken_settings_are_not() {
        for tier in Tier::ALL {
            ClientSettings::preset(tier).validate().unwrap();
        }
        let mut settings = ClientSettings::preset(Tier::Default);
        settings.breaker.half_open_calls = 0;
        assert!(settings.validate().unwrap_err().contains("half-open"));
    }

    #[test]
    fn downstream_names_become_variable_prefixes() {
        assert_eq!(EnvNames::new("member").name("TIER"), "MEMBER_CLIENT_TIER");
        assert_eq!(
            EnvNames::new("push-gateway").name("TIMEOUT_MS"),
            "PUSH_GATEWAY_CLIENT_TIMEOUT_MS"
        );
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let retry = RetrySettings {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(500),
            jitter: 0.0,
        };
        let waits: Vec<u128> = (1..=5).map(|n| retry.base_backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
        assert_eq!(
            retry.backoff(2, 0.9).as_millis(),
            200,
            "no jitter, no spread"
        );
    }

    #[test]
    fn jitter_spreads_the_wait_both_ways() {
        let retry = RetrySettings {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(2),
            jitter: 0.5,
        };
        assert_eq!(retry.backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(retry.backoff(1, 0.5), Duration::from_millis(500));
        assert_eq!(retry.backoff(1, 1.0), Duration::from_millis(750));
    }
}
