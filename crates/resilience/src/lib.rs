//! The resilient inter-service HTTP client: every call one dailyfeed service makes to
//! another goes through a [`ResilientClient`] for that downstream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use resilience::{ClientSettings, ResilientClient, Tier};
//! use service_runtime::{ProcessEnv, ServiceName};
//!
//! // At startup (config): fails on a malformed variable, naming it.
//! let settings = ClientSettings::from_env(&ProcessEnv, "member", Tier::Critical)?;
//! let member = ResilientClient::new("member", ServiceName::Member.peer_url(&ProcessEnv)?, settings)?;
//!
//! // Per request: a 4xx comes back as a response; a broken downstream as a `CallError`.
//! match member.get("/internal/members/7/following-ids").await {
//!     Ok(response) if response.status().is_success() => { /* use it */ }
//!     Ok(response) => { /* 404 & co: the caller decides */ }
//!     Err(err) if err.is_unavailable() => { /* 503, or a degraded answer */ }
//!     Err(err) => return Err(err.into()), // a request we built wrong: our bug
//! }
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! A call runs through these layers, in resilience4j's order (retry outside, breaker, then
//! rate limiter, then the timed exchange), so the seed's numbers keep their meaning:
//!
//! 1. **Retry** ([`RetrySettings`]): up to `max_attempts` attempts, with exponential backoff
//!    and jitter between them, and only after a *retriable* failure: a connect error, a
//!    timeout, or a 502/503/504. A 4xx is an answer, never retried; a 500 is a bug a retry
//!    would repeat. Only idempotent requests are repeated: GET, HEAD, OPTIONS, PUT, DELETE,
//!    and POST/PATCH only with an `Idempotency-Key` header. The whole call, backoffs
//!    included, stays within the settings' `deadline`.
//! 2. **Circuit breaker** ([`BreakerSettings`], see [`BreakerState`]): each attempt asks it
//!    for a permit and reports how it went. A count-based sliding window of the last calls
//!    opens it when the failure rate or the slow-call rate reaches its threshold (after a
//!    minimum number of calls). Open, it rejects at once — nothing reaches the network —
//!    until its wait is over; then it lets a few probes through (half-open), whose rates
//!    close it again or reopen it. Failures are connect errors, timeouts, other transport
//!    errors and 5xx; 4xx answers are successes as far as the breaker is concerned.
//! 3. **Rate limiter** ([`RateLimitSettings`]): governor's GCRA, `limit_for_period` calls per
//!    `refresh_period`, waiting at most `max_wait` for a permit. It protects the downstream
//!    from us; a refusal never counts against the downstream's health.
//! 4. **Timeout**: each attempt, from connecting to the end of the body, gets `timeout`
//!    (cut to what is left of the deadline).
//!
//! The presets ([`Tier::Critical`], [`Tier::Default`], [`Tier::Conservative`]) carry seed
//! 003's numbers; [`ClientSettings::from_env`] reads `<DOWNSTREAM>_CLIENT_*` overrides.
//! `docs/resilience.md` has the tables.
//!
//! Observability: the gauge `resilience_circuit_state{downstream}`, the counter
//! `resilience_calls_total{downstream,outcome}` and the histogram
//! `resilience_call_duration_seconds{downstream,outcome}` (names in [`metrics_names`]);
//! breaker transitions are logged (opening at `warn`, the rest at `info`); each call is a
//! client span whose context goes to the downstream as `traceparent`.

mod breaker;
mod client;
mod error;
mod limiter;
mod observe;
mod settings;

pub use breaker::{BreakerState, CircuitBreaker, Outcome, Permit};
pub use client::{Call, CallCredentials, ResilientClient};
pub use error::{BuildError, CallError};
pub use settings::{
    BreakerSettings, ClientSettings, EnvNames, RateLimitSettings, RetrySettings, Tier,
};

/// Metric names and `outcome` label values, for dashboards, alerts and tests.
pub mod metrics_names {
    pub use crate::observe::{
        CALL_DURATION_SECONDS, CALLS_TOTAL, CIRCUIT_STATE, OUTCOME_FAILURE, OUTCOME_REJECTED_OPEN,
        OUTCOME_REJECTED_RATE_LIMIT, OUTCOME_RETRIED, OUTCOME_SLOW, OUTCOME_SUCCESS,
    };
}

/// The `reqwest` this crate speaks, so callers need not pin their own.
pub use reqwest;
