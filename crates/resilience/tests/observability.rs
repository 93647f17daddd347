//! What operators see: the Prometheus series a client records (through the same recorder a
//! service's `/metrics` renders) and the trace context it hands to the downstream.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Downstream, Reply, client, quick_settings};
use resilience::BreakerState;
use resilience::metrics_names::{CALL_DURATION_SECONDS, CALLS_TOTAL, CIRCUIT_STATE};
use tracing::Instrument;

/// The value of the series `name{labels…}` in a Prometheus text rendering.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn calls(text: &str, downstream: &str, outcome: &str) -> Option<f64> {
    sample(
        text,
        CALLS_TOTAL,
        &[("downstream", downstream), ("outcome", outcome)],
    )
}

fn state(text: &str, downstream: &str) -> Option<f64> {
    sample(text, CIRCUIT_STATE, &[("downstream", downstream)])
}

#[tokio::test]
async fn metrics_follow_the_breaker_and_count_every_outcome() {
    let prometheus = telemetry::prometheus();
    let server = Downstream::start(Reply::status(503)).await;
    let mut settings = quick_settings();
    settings.retry.max_attempts = 2;
    settings.breaker.window_size = 10;
    settings.breaker.minimum_calls = 2;
    settings.breaker.wait_in_open = Duration::from_millis(200);
    let name = "metrics_probe";
    let probe = client(name, &server.url, settings);
    assert_eq!(state(&prometheus.render(), name), Some(0.0));

    // One call, two failed attempts (one retry): the breaker opens.
    probe.get("/x").await.unwrap_err();
    let text = prometheus.render();
    assert_eq!(state(&text, name), Some(1.0), "{text}");
    assert_eq!(calls(&text, name, "failure"), Some(2.0));
    assert_eq!(calls(&text, name, "retried"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            &format!("{CALL_DURATION_SECONDS}_count"),
            &[("downstream", name), ("outcome", "failure")]
        ),
        Some(2.0),
        "{text}"
    );

    probe.get("/x").await.unwrap_err();
    assert_eq!(
        calls(&prometheus.render(), name, "rejected_open"),
        Some(1.0)
    );

    // No call and no state read: the gauge moves to half-open by itself.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(state(&prometheus.render(), name), Some(2.0));

    server.answer(Reply::status(200));
    probe.get("/x").await.unwrap();
    assert_eq!(probe.breaker_state(), BreakerState::Closed);
    let text = prometheus.render();
    assert_eq!(state(&text, name), Some(0.0));
    assert_eq!(calls(&text, name, "success"), Some(1.0));

    // Slow answers and local rate-limit refusals have their own outcomes.
    let slow_server = Downstream::start(Reply::after(Duration::from_millis(60), 200)).await;
    let mut settings = quick_settings();
    settings.breaker.slow_call_duration = Duration::from_millis(30);
    settings.rate_limit.limit_for_period = 1;
    settings.rate_limit.refresh_period = Duration::from_secs(60);
    let limited = client("metrics_limited", &slow_server.url, settings);
    limited.get("/x").await.unwrap();
    limited.get("/x").await.unwrap_err();
    let text = prometheus.render();
    assert_eq!(calls(&text, "metrics_limited", "slow"), Some(1.0), "{text}");
    assert_eq!(
        calls(&text, "metrics_limited", "rejected_rate_limit"),
        Some(1.0)
    );
}

#[tokio::test]
async fn calls_carry_the_callers_trace_context() {
    let _guard = telemetry::init(&telemetry::TelemetryConfig {
        service_name: "resilience-test".to_owned(),
        log_filter: "warn".to_owned(),
        trace_filter: "info".to_owned(),
        log_format: telemetry::LogFormat::Pretty,
        otlp_endpoint: None,
    })
    .unwrap();
    let server = Downstream::start(Reply::status(200)).await;
    let member = client("member", &server.url, quick_settings());

    let span = tracing::info_span!("handler");
    let trace_id = span.in_scope(telemetry::current_trace_id).unwrap();
    async { member.get("/x").await.unwrap() }
        .instrument(span)
        .await;

    let hits = server.hits();
    let traceparent = hits[0]
        .headers
        .get("traceparent")
        .expect("traceparent sent");
    // version-traceid-spanid-flags, the trace being the caller's.
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], trace_id);
}
