//! The client against real local HTTP servers: what is retried and what is not, when the
//! breaker opens, rejects, probes and closes, and when the rate limiter refuses.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Downstream, Reply, client, closed_port_url, quick_settings};
use resilience::{BreakerState, CallError, ClientSettings};

fn with_breaker(
    minimum_calls: u32,
    failure_rate: u8,
    wait_ms: u64,
    half_open_calls: u32,
) -> ClientSettings {
    let mut settings = quick_settings();
    settings.retry.max_attempts = 1;
    settings.breaker.window_size = 10;
    settings.breaker.minimum_calls = minimum_calls;
    settings.breaker.failure_rate_threshold = failure_rate;
    settings.breaker.wait_in_open = Duration::from_millis(wait_ms);
    settings.breaker.half_open_calls = half_open_calls;
    settings
}

// ---- retry ----

#[tokio::test]
async fn a_503_is_retried_with_growing_backoff_until_it_succeeds() {
    let server = Downstream::start(Reply::status(200)).await;
    server.then([Reply::status(503), Reply::status(503)]);
    let mut settings = quick_settings();
    settings.retry.initial_backoff = Duration::from_millis(60);
    let member = client("member", &server.url, settings);

    let res = member
        .get("/internal/members/7/following-ids")
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "answer 3");
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter()
            .all(|h| h.path == "/internal/members/7/following-ids")
    );
    let first_gap = hits[1].at - hits[0].at;
    let second_gap = hits[2].at - hits[1].at;
    assert!(first_gap >= Duration::from_millis(55), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(115), "{second_gap:?}");
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_report_the_last_status() {
    let server = Downstream::start(Reply::status(503)).await;
    let content = client("content", &server.url, quick_settings());

    let err = content.get("/posts/1").await.unwrap_err();

    assert!(
        matches!(&err, CallError::Status { status, attempts: 3, .. } if status.as_u16() == 503),
        "{err:?}"
    );
    assert_eq!(server.hit_count(), 3);
    assert_eq!(err.downstream(), "content");
    assert!(err.to_string().contains("content"), "{err}");
    assert!(err.is_unavailable());
    assert!(!err.is_rejected_locally());
}

#[tokio::test]
async fn bad_gateway_and_gateway_timeout_are_retried_too() {
    let server = Downstream::start(Reply::status(200)).await;
    server.then([Reply::status(502), Reply::status(504)]);
    let member = client("member", &server.url, quick_settings());

    let res = member.get("/x").await.unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test]
async fn a_4xx_is_returned_to_the_caller_and_never_retried() {
    for status in [400, 401, 404, 409, 429] {
        let server = Downstream::start(Reply::status(status)).await;
        let member = client("member", &server.url, quick_settings());

        let res = member.get("/internal/members/404").await.unwrap();

        assert_eq!(res.status().as_u16(), status);
        assert_eq!(res.text().await.unwrap(), "answer 1");
        assert_eq!(server.hit_count(), 1, "status {status} was retried");
    }
}

#[tokio::test]
async fn a_500_is_a_failure_but_not_retried() {
    let server = Downstream::start(Reply::status(500)).await;
    let member = client("member", &server.url, quick_settings());

    let err = member.get("/x").await.unwrap_err();

    assert!(
        matches!(&err, CallError::Status { status, attempts: 1, .. } if status.as_u16() == 500),
        "{err:?}"
    );
    assert_eq!(server.hit_count(), 1);
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let server = Downstream::start(Reply::after(Duration::from_secs(2), 200)).await;
    let mut settings = quick_settings();
    settings.timeout = Duration::from_millis(150);
    settings.retry.max_attempts = 2;
    let member = client("member", &server.url, settings);

    let started = Instant::now();
    let err = member.get("/slow").await.unwrap_err();

    assert!(
        matches!(err, CallError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert_eq!(server.hit_count(), 2);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_answer_after_a_timed_out_attempt_is_used() {
    let server = Downstream::start(Reply::status(200)).await;
    server.then([Reply::after(Duration::from_secs(2), 200)]);
    let mut settings = quick_settings();
    settings.timeout = Duration::from_millis(150);
    let member = client("member", &server.url, settings);

    let res = member.get("/x").await.unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(server.hit_count(), 2);
}

#[tokio::test]
async fn connect_errors_are_retried_with_backoff() {
    let mut settings = quick_settings();
    settings.retry.initial_backoff = Duration::from_millis(50);
    let gone = client("image", &closed_port_url(), settings);

    let started = Instant::now();
    let err = gone.get("/images/1").await.unwrap_err();

    assert!(
        matches!(err, CallError::Connect { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.downstream(), "image");
    assert!(err.is_unavailable());
    // Two waits: 50 ms, then 100 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(145),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn post_and_patch_without_an_idempotency_key_are_never_retried() {
    let server = Downstream::start(Reply::status(503)).await;
    let content = client("content", &server.url, quick_settings());

    let err = content
        .post("/internal/posts")
        .json(&serde_json::json!({"body": "hi"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Status { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(server.hit_count(), 1);

    let err = content.patch("/internal/posts/1").await.unwrap_err();
    assert!(
        matches!(err, CallError::Status { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(server.hit_count(), 2);
}

#[tokio::test]
async fn post_without_a_key_is_not_retried_after_a_timeout_either() {
    let server = Downstream::start(Reply::after(Duration::from_secs(2), 201)).await;
    let mut settings = quick_settings();
    settings.timeout = Duration::from_millis(150);
    let content = client("content", &server.url, settings);

    let err = content.post("/internal/posts").await.unwrap_err();

    assert!(
        matches!(err, CallError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(server.hit_count(), 1);
}

#[tokio::test]
async fn post_with_an_idempotency_key_is_retried_with_the_same_body() {
    let server = Downstream::start(Reply::status(201)).await;
    server.then([Reply::status(503), Reply::status(503)]);
    let content = client("content", &server.url, quick_settings());

    let res = content
        .post("/internal/posts")
        .idempotency_key("create-42")
        .json(&serde_json::json!({"body": "hi"}))
        .await
        .unwrap();

    assert_eq!(res.status(), 201);
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    for hit in &hits {
        assert_eq!(hit.method, "POST");
        assert_eq!(hit.headers.get("idempotency-key").unwrap(), "create-42");
        assert_eq!(hit.body, r#"{"body":"hi"}"#);
    }
}

#[tokio::test]
async fn the_deadline_bounds_the_whole_call() {
    let server = Downstream::start(Reply::after(Duration::from_secs(2), 200)).await;
    let mut settings = quick_settings();
    settings.timeout = Duration::from_millis(200);
    settings.deadline = Duration::from_millis(400);
    settings.retry.max_attempts = 5;
    settings.retry.initial_backoff = Duration::from_millis(10);
    let member = client("member", &server.url, settings);

    let started = Instant::now();
    let err = member.get("/slow").await.unwrap_err();

    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    assert_eq!(
        server.hit_count(),
        2,
        "the second attempt gets what is left"
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_that_cannot_be_built_is_our_bug_not_an_outage() {
    let server = Downstream::start(Reply::status(200)).await;
    let member = client("member", &server.url, quick_settings());

    let err = member
        .get("/x")
        .header("bad header name", "v")
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidRequest { .. }), "{err:?}");
    assert!(!err.is_unavailable());

    let err = member.get("http://elsewhere.example/").await.unwrap_err();
    assert!(matches!(err, CallError::InvalidRequest { .. }), "{err:?}");
    assert_eq!(server.hit_count(), 0);
}

// ---- circuit breaker ----

#[tokio::test]
async fn the_breaker_opens_at_the_failure_rate_and_then_rejects_without_calling() {
    let server = Downstream::start(Reply::status(503)).await;
    let timeline = client("timeline", &server.url, with_breaker(4, 50, 60_000, 1));

    for _ in 0..3 {
        timeline.get("/x").await.unwrap_err();
        assert_eq!(timeline.breaker_state(), BreakerState::Closed);
    }
    timeline.get("/x").await.unwrap_err();
    assert_eq!(timeline.breaker_state(), BreakerState::Open);
    assert_eq!(server.hit_count(), 4);

    let started = Instant::now();
    for _ in 0..20 {
        let err = timeline.get("/x").await.unwrap_err();
        assert!(matches!(err, CallError::CircuitOpen { .. }), "{err:?}");
        assert!(err.is_unavailable() && err.is_rejected_locally());
        let retry_after = err.retry_after().unwrap();
        assert!(retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60));
    }
    assert_eq!(
        server.hit_count(),
        4,
        "nothing reached the server while open"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_breaker_stays_closed_under_the_failure_rate() {
    let server = Downstream::start(Reply::status(200)).await;
    let timeline = client("timeline", &server.url, with_breaker(4, 50, 60_000, 1));
    // 1 failure in 4 = 25 %.
    server.then([Reply::status(503)]);
    for _ in 0..4 {
        let _ = timeline.get("/x").await;
    }
    assert_eq!(timeline.breaker_state(), BreakerState::Closed);
    assert_eq!(server.hit_count(), 4);
}

#[tokio::test]
async fn four_hundreds_never_open_the_breaker() {
    let server = Downstream::start(Reply::status(404)).await;
    let member = client("member", &server.url, with_breaker(2, 50, 60_000, 1));

    for _ in 0..10 {
        assert_eq!(member.get("/missing").await.unwrap().status(), 404);
    }
    assert_eq!(member.breaker_state(), BreakerState::Closed);
    assert_eq!(server.hit_count(), 10);
}

#[tokio::test]
async fn timeouts_and_connect_errors_open_the_breaker() {
    let gone = client("image", &closed_port_url(), with_breaker(2, 50, 60_000, 1));
    gone.get("/x").await.unwrap_err();
    gone.get("/x").await.unwrap_err();
    assert_eq!(gone.breaker_state(), BreakerState::Open);

    let server = Downstream::start(Reply::after(Duration::from_secs(2), 200)).await;
    let mut settings = with_breaker(2, 50, 60_000, 1);
    settings.timeout = Duration::from_millis(100);
    let slowpoke = client("content", &server.url, settings);
    slowpoke.get("/x").await.unwrap_err();
    slowpoke.get("/x").await.unwrap_err();
    assert_eq!(slowpoke.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn slow_successes_count_towards_opening() {
    let server = Downstream::start(Reply::after(Duration::from_millis(120), 200)).await;
    let mut settings = with_breaker(2, 100, 60_000, 1);
    settings.breaker.slow_call_duration = Duration::from_millis(80);
    settings.breaker.slow_call_rate_threshold = 50;
    let member = client("member", &server.url, settings);

    assert_eq!(member.get("/x").await.unwrap().status(), 200);
    assert_eq!(member.breaker_state(), BreakerState::Closed);
    assert_eq!(member.get("/x").await.unwrap().status(), 200);
    assert_eq!(member.breaker_state(), BreakerState::Open, "2 of 2 slow");
    let err = member.get("/x").await.unwrap_err();
    assert!(matches!(err, CallError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(server.hit_count(), 2);
}

#[tokio::test]
async fn the_breaker_half_opens_after_the_wait_and_closes_after_good_probes() {
    let server = Downstream::start(Reply::status(503)).await;
    let member = client("member", &server.url, with_breaker(2, 50, 200, 2));
    member.get("/x").await.unwrap_err();
    member.get("/x").await.unwrap_err();
    assert_eq!(member.breaker_state(), BreakerState::Open);
    server.answer(Reply::status(200));

    assert!(matches!(
        member.get("/x").await.unwrap_err(),
        CallError::CircuitOpen { .. }
    ));
    tokio::time::sleep(Duration::from_millis(260)).await;
    assert_eq!(member.breaker_state(), BreakerState::HalfOpen);

    assert_eq!(member.get("/x").await.unwrap().status(), 200);
    assert_eq!(
        member.breaker_state(),
        BreakerState::HalfOpen,
        "one of two probes"
    );
    assert_eq!(member.get("/x").await.unwrap().status(), 200);
    assert_eq!(member.breaker_state(), BreakerState::Closed);
    assert_eq!(server.hit_count(), 4);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let server = Downstream::start(Reply::status(503)).await;
    let member = client("member", &server.url, with_breaker(2, 50, 150, 1));
    member.get("/x").await.unwrap_err();
    member.get("/x").await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(member.breaker_state(), BreakerState::HalfOpen);

    let err = member.get("/x").await.unwrap_err();
    assert!(
        matches!(err, CallError::Status { .. }),
        "the probe went out: {err:?}"
    );
    assert_eq!(member.breaker_state(), BreakerState::Open);
    assert_eq!(server.hit_count(), 3);
    let err = member.get("/x").await.unwrap_err();
    assert!(matches!(err, CallError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test]
async fn half_open_lets_only_the_permitted_probes_through() {
    let server = Downstream::start(Reply::status(503)).await;
    let member = client("member", &server.url, with_breaker(2, 50, 150, 1));
    member.get("/x").await.unwrap_err();
    member.get("/x").await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.answer(Reply::after(Duration::from_millis(300), 200));

    let probe = tokio::spawn({
        let member = member.clone();
        async move { member.get("/probe").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = member.get("/second").await.unwrap_err();
    assert!(matches!(err, CallError::CircuitOpen { .. }), "{err:?}");

    assert_eq!(probe.await.unwrap().unwrap().status(), 200);
    assert_eq!(member.breaker_state(), BreakerState::Closed);
    assert_eq!(server.hit_count(), 3);
}

#[tokio::test]
async fn a_breaker_that_opens_mid_call_stops_the_retries() {
    let server = Downstream::start(Reply::status(503)).await;
    let mut settings = with_breaker(2, 50, 60_000, 1);
    settings.retry.max_attempts = 5;
    let member = client("member", &server.url, settings);

    let err = member.get("/x").await.unwrap_err();

    assert!(matches!(err, CallError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(server.hit_count(), 2, "each attempt counts in the window");
}

// ---- rate limiter ----

#[tokio::test]
async fn the_rate_limiter_refuses_calls_beyond_the_rate() {
    let server = Downstream::start(Reply::status(200)).await;
    let mut settings = with_breaker(1, 50, 60_000, 1);
    settings.rate_limit.limit_for_period = 3;
    settings.rate_limit.refresh_period = Duration::from_secs(60);
    let image = client("image", &server.url, settings);

    for _ in 0..3 {
        assert_eq!(image.get("/x").await.unwrap().status(), 200);
    }
    let started = Instant::now();
    let err = image.get("/x").await.unwrap_err();

    assert!(matches!(err, CallError::RateLimited { .. }), "{err:?}");
    assert!(err.is_unavailable() && err.is_rejected_locally());
    assert_eq!(err.downstream(), "image");
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(server.hit_count(), 3);
    assert_eq!(
        image.breaker_state(),
        BreakerState::Closed,
        "our own limit says nothing about the downstream"
    );
}

#[tokio::test]
async fn the_rate_limiter_waits_for_a_permit_up_to_the_allowed_wait() {
    let server = Downstream::start(Reply::status(200)).await;
    let mut settings = quick_settings();
    settings.rate_limit.limit_for_period = 1;
    settings.rate_limit.refresh_period = Duration::from_millis(200);
    settings.rate_limit.max_wait = Duration::from_millis(500);
    let member = client("member", &server.url, settings);

    member.get("/x").await.unwrap();
    let started = Instant::now();
    member.get("/x").await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.hit_count(), 2);
}

// ---- credentials ----

/// Numbers its answers, so each attempt's header differs.
struct Counting(std::sync::atomic::AtomicU32);

impl resilience::CallCredentials for Counting {
    fn authorization(&self, downstream: &str) -> Result<String, String> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(format!("Bearer {downstream}-{n}"))
    }
}

struct Broken;

impl resilience::CallCredentials for Broken {
    fn authorization(&self, _: &str) -> Result<String, String> {
        Err("no key".into())
    }
}

#[tokio::test]
async fn every_attempt_carries_credentials_asked_for_that_downstream() {
    let server = Downstream::start(Reply::status(200)).await;
    server.then([Reply::status(503)]);
    let member = client("member", &server.url, quick_settings())
        .with_credentials(std::sync::Arc::new(Counting(0.into())));
    let res = member.get("/internal/follows").await.unwrap();
    assert_eq!(res.status(), 200);
    let auth: Vec<String> = server
        .hits()
        .iter()
        .map(|h| h.headers.get("authorization").cloned().unwrap_or_default())
        .collect();
    assert_eq!(auth, ["Bearer member-0", "Bearer member-1"]);
}

#[tokio::test]
async fn a_call_whose_credentials_fail_is_not_sent() {
    let server = Downstream::start(Reply::status(200)).await;
    let member = client("member", &server.url, quick_settings())
        .with_credentials(std::sync::Arc::new(Broken));
    let err = member.get("/internal/follows").await.unwrap_err();
    assert!(matches!(err, CallError::InvalidRequest { .. }), "{err}");
    assert_eq!(server.hit_count(), 0);
}
