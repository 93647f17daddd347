//! The metrics every resilient client records, by name, so dashboards and alerts have one
//! place to look. Recorded through the `metrics` facade: a service's `/metrics` shows them.

use std::time::Duration;

use crate::breaker::BreakerState;

/// Gauge per downstream: 0 closed, 1 open, 2 half-open.
pub const CIRCUIT_STATE: &str = "resilience_circuit_state";
/// Counter per downstream and outcome (see the `OUTCOME_*` constants).
pub const CALLS_TOTAL: &str = "resilience_calls_total";
/// Histogram per downstream and outcome (success, slow, failure): one attempt's duration
/// until the answer's headers, in seconds.
pub const CALL_DURATION_SECONDS: &str = "resilience_call_duration_seconds";

/// An attempt that got a non-5xx answer in time (4xx included: that is the caller's business).
pub const OUTCOME_SUCCESS: &str = "success";
/// Like success, but at or over the slow-call threshold.
pub const OUTCOME_SLOW: &str = "slow";
/// An attempt that failed: connect error, timeout, other transport error, or 5xx.
pub const OUTCOME_FAILURE: &str = "failure";
/// A call rejected by the open (or probing, half-open) breaker without reaching the network.
pub const OUTCOME_REJECTED_OPEN: &str = "rejected_open";
/// A call rejected by the client-side rate limiter without reaching the network.
pub const OUTCOME_REJECTED_RATE_LIMIT: &str = "rejected_rate_limit";
/// A retry scheduled after a retriable failure.
pub const OUTCOME_RETRIED: &str = "retried";

pub(crate) fn circuit_state(downstream: &str, state: BreakerState) {
    metrics::gauge!(CIRCUIT_STATE, "downstream" => downstream.to_owned()).set(state.gauge_value());
}

pub(crate) fn call(downstream: &str, outcome: &'static str) {
    metrics::counter!(CALLS_TOTAL, "downstream" => downstream.to_owned(), "outcome" => outcome)
        .increment(1);
}

pub(crate) fn attempt(downstream: &str, outcome: &'static str, took: Duration) {
    call(downstream, outcome);
    metrics::histogram!(
        CALL_DURATION_SECONDS,
        "downstream" => downstream.to_owned(),
        "outcome" => outcome
    )
    .record(took.as_secs_f64());
}
