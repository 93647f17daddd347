//! The gateway's edge and proxy: routing by prefix to the real member and content, token
//! checks at the edge, identity and forwarding headers, streaming, rate limits, and broken
//! downstreams.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Member, call, client, echo_service, gateway};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;
use test_harness::platform::assert_json_error;

#[tokio::test]
async fn routes_by_prefix_to_member_and_content_with_public_paths_open() {
    let member = Member::start().await;
    let content_env = test_harness::TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("REDIS_KEY_PREFIX", member.prefix())
        .set("MEMBER_URL", member.service.base_url());
    let content = content::start(content::Config::from_env(content_env.vars()).unwrap())
        .await
        .unwrap();
    let gw = gateway(&member.gateway_env().set("CONTENT_URL", content.base_url())).await;
    let base = gw.base_url();
    let token = member.token(5).await;

    // A write goes through with the token, to content.
    let res = client()
        .post(format!("{base}/api/v1/posts"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"body": "hello through the gateway"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let post: Value = res.json().await.unwrap();
    // Reading posts is public: no token needed.
    let res = call(
        Method::GET,
        format!("{base}/api/v1/posts/{}", post["id"]),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["body"],
        "hello through the gateway"
    );
    // Query strings pass through.
    let res = call(Method::GET, format!("{base}/api/v1/posts?author=5"), None).await;
    assert_eq!(res.status(), 200);
    // Writing without a token is refused at the edge.
    let res = client()
        .post(format!("{base}/api/v1/posts"))
        .json(&serde_json::json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_json_error(res, "unauthorized").await;
    // member: a public path (check-email) and a protected one (me).
    let res = call(
        Method::GET,
        format!("{base}/api/v1/auth/check-email?email=a%40b.example"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let res = call(Method::GET, format!("{base}/api/v1/members/me"), None).await;
    assert_eq!(res.status(), 401);
    // member's own error bodies pass through unchanged.
    let res = call(
        Method::GET,
        format!("{base}/api/v1/members/999999"),
        Some(&token),
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_json_error(res, "not_found").await;
    // No route: 404 JSON from the gateway.
    let res = call(Method::GET, format!("{base}/api/v1/nowhere"), Some(&token)).await;
    assert_eq!(res.status(), 404);
    assert_json_error(res, "not_found").await;
    gw.stop().await;
    content.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused_at_the_edge() {
    let member = Member::start().await;
    // Posts route to a closed port: anything that got past the edge would be a 503.
    let closed = format!("http://127.0.0.1:{}", test_harness::closed_port());
    let gw = gateway(&member.gateway_env().set("CONTENT_URL", closed)).await;
    let base = gw.base_url();
    let url = format!("{base}/api/v1/posts");
    let valid = member.token(3).await;
    let (head, rest) = valid.split_once('.').unwrap();
    let (claims, _sig) = rest.split_once('.').unwrap();
    let forged_signature = format!("{head}.{claims}.{}", "A".repeat(86));
    for forged in [
        "not-a-jwt",
        forged_signature.as_str(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
    ] {
        let res = client()
            .post(&url)
            .bearer_auth(forged)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{forged}");
        assert_json_error(res, "invalid_token").await;
    }
    let expired = member.token_with(3, -60).await;
    let res = client()
        .post(&url)
        .bearer_auth(&expired)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-token-refresh-needed"], "true");
    assert_json_error(res, "token_expired").await;
    // The valid token does get through the edge — and meets the closed port.
    let res = client()
        .post(&url)
        .bearer_auth(&valid)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn spoofed_identity_headers_are_replaced_and_forwarding_headers_set() {
    let member = Member::start().await;
    let echo = echo_service().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set(
                "GATEWAY_ROUTES",
                format!("/api/v1/echo={}", echo.base_url()),
            )
            .set("GATEWAY_PUBLIC_PATHS", "GET /api/v1/echo/headers"),
    )
    .await;
    let base = gw.base_url();
    let token = member.token(42).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = client()
        .post(format!("{base}/api/v1/echo/headers?x=1"))
        .bearer_auth(&token)
        .header("X-User-Id", "1")
        .header("X-User-Type", "ADMIN")
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Forwarded-Proto", "https")
        .header("X-Original-URL", "/internal/posts")
        .header("X-Rewrite-URL", "/internal/posts")
        .header("X-HTTP-Method-Override", "DELETE")
        .header("X-Forwarded-Host", "evil.example")
        .header("Forwarded", "for=203.0.113.9;host=evil.example")
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-limit"], "100");
    let seen: Value = res.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-user-id"], serde_json::json!(["42"]), "{seen}");
    assert_eq!(h["x-user-type"], serde_json::json!(["USER"]));
    // Nothing in front of the gateway is trusted: what the client wrote never travels on.
    assert_eq!(h["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], serde_json::json!(["http"]));
    for rewriting in [
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-forwarded-host",
        "forwarded",
    ] {
        assert!(h.get(rewriting).is_none(), "{rewriting} forwarded: {seen}");
    }
    let forwarded = h["traceparent"][0].as_str().unwrap();
    assert_eq!(
        &forwarded[3..35],
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "same trace"
    );
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["path"], "/api/v1/echo/headers");
    // A public path without a token: spoofed identity is still removed, none injected.
    let res = client()
        .get(format!("{base}/api/v1/echo/headers"))
        .header("X-User-Id", "1")
        .send()
        .await
        .unwrap();
    let seen: Value = res.json().await.unwrap();
    assert!(seen["headers"].get("x-user-id").is_none(), "{seen}");
    gw.stop().await;
    echo.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let member = Member::start().await;
    let echo = echo_service().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set(
                "GATEWAY_ROUTES",
                format!("/api/v1/echo={}", echo.base_url()),
            )
            .set("GATEWAY_TIMEOUT_MS", "3000"),
    )
    .await;
    let base = gw.base_url();
    let token = member.token(1).await;
    // Download: the first chunk arrives before the downstream has finished.
    let started = Instant::now();
    let res = call(
        Method::GET,
        format!("{base}/api/v1/echo/drip"),
        Some(&token),
    )
    .await;
    let mut body = res.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first;");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    let second = body.next().await.unwrap().unwrap();
    assert_eq!(&second[..], b"second");
    // Upload: 24 MiB, larger than any body limit, streamed in chunks.
    let chunk = vec![7u8; 64 * 1024];
    let chunks = 384;
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let res = client()
        .post(format!("{base}/api/v1/echo/upload"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["bytes"], 64 * 1024 * chunks, "{seen}");
    assert!(seen["chunks"].as_u64().unwrap() > 1, "{seen}");
    gw.stop().await;
    echo.stop().await;
    member.stop().await;
}

/// A 429 as the edge answers it: `Retry-After` within the window, the limit, nothing left,
/// and the shared JSON error.
async fn assert_rate_limited(res: reqwest::Response, limit: &str) {
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(res.headers()["x-ratelimit-limit"], limit);
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    assert_json_error(res, "rate_limited").await;
}

#[tokio::test]
async fn login_is_rate_limited_per_ip_and_apis_per_member_with_429_and_retry_after() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set(
        "GATEWAY_RATE_LIMITS",
        "POST /api/v1/auth/login=3/60s@ip, /api/v1/**=5/60s@member",
    ))
    .await;
    let base = gw.base_url();
    let login = serde_json::json!({"email": "nobody@example.com", "password": "wrong-password-1"});
    for i in 0..3 {
        let res = client()
            .post(format!("{base}/api/v1/auth/login"))
            .json(&login)
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 429, "attempt {i}");
        assert_eq!(res.headers()["x-ratelimit-limit"], "3");
        assert_eq!(
            res.headers()["x-ratelimit-remaining"],
            (2 - i).to_string().as_str()
        );
    }
    let res = client()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_rate_limited(res, "3").await;

    let (one, two) = (member.token(1).await, member.token(2).await);
    for _ in 0..5 {
        let res = call(
            Method::GET,
            format!("{base}/api/v1/queue/status"),
            Some(&one),
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let res = call(
        Method::GET,
        format!("{base}/api/v1/queue/status"),
        Some(&one),
    )
    .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // Another member has their own budget.
    let res = call(
        Method::GET,
        format!("{base}/api/v1/queue/status"),
        Some(&two),
    )
    .await;
    assert_eq!(res.status(), 200);
    gw.stop().await;
    member.stop().await;
}

/// The lineup counts its rate limit inside its own script (one round trip): same budget and
/// answers as any other route, and a refused lineup changes nothing in the queue.
#[tokio::test]
async fn a_lineup_shares_the_member_budget_and_a_refused_one_leaves_the_queue_alone() {
    let member = Member::start().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set("GATEWAY_RATE_LIMITS", "/api/v1/**=3/60s@member")
            .set("ALLOWED_IN_MAX_CAPACITY", "1")
            .set("QUEUE_SCHEDULER_INTERVAL_MS", "600000"),
    )
    .await;
    let base = gw.base_url();
    let (admitted, limited, other) = (
        member.token(1).await,
        member.token(3).await,
        member.token(4).await,
    );
    let post = |token: &String| {
        let (url, token) = (format!("{base}/api/v1/queue/lineup"), token.clone());
        async move { call(Method::POST, url, Some(&token)).await }
    };
    assert_eq!(post(&admitted).await.status(), 200);

    // Two other calls, then the lineup takes the last of the budget.
    for remaining in ["2", "1"] {
        let res = call(
            Method::GET,
            format!("{base}/api/v1/queue/status"),
            Some(&limited),
        )
        .await;
        assert_eq!(res.headers()["x-ratelimit-remaining"], remaining);
    }
    let res = post(&limited).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-limit"], "3");
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(res.json::<Value>().await.unwrap()["position"], 1);
    let res = post(&other).await;
    assert_eq!(res.json::<Value>().await.unwrap()["position"], 2);

    // Over the budget: 429 like every other route, and not moved to the back.
    let res = post(&limited).await;
    assert_rate_limited(res, "3").await;
    let res = call(
        Method::GET,
        format!("{base}/api/v1/queue/status"),
        Some(&other),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["position"], 2);

    // Without rules, lineups carry no limit headers.
    gw.stop().await;
    let gw = gateway(&member.gateway_env().set("GATEWAY_RATE_LIMITS", "")).await;
    let res = call(
        Method::POST,
        format!("{}/api/v1/queue/lineup", gw.base_url()),
        Some(&other),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(!res.headers().contains_key("x-ratelimit-limit"));
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn a_down_downstream_is_503_and_a_slow_one_504_within_the_route_timeout() {
    let member = Member::start().await;
    let echo = echo_service().await;
    let closed = format!("http://127.0.0.1:{}", test_harness::closed_port());
    let gw = gateway(
        &member
            .gateway_env()
            .set(
                "GATEWAY_ROUTES",
                format!("/api/v1/echo={},/api/v1/posts=content", echo.base_url()),
            )
            .set("CONTENT_URL", closed)
            .set("GATEWAY_TIMEOUT_MS", "300"),
    )
    .await;
    let base = gw.base_url();
    let token = member.token(1).await;
    let started = Instant::now();
    let res = call(Method::GET, format!("{base}/api/v1/posts/1"), Some(&token)).await;
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(500));
    let body = assert_json_error(res, "downstream_unavailable").await;
    assert!(
        body["message"].as_str().unwrap().contains("content"),
        "{body}"
    );

    let started = Instant::now();
    let res = call(
        Method::GET,
        format!("{base}/api/v1/echo/slow"),
        Some(&token),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 504);
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(900),
        "{elapsed:?}"
    );
    assert_json_error(res, "gateway_timeout").await;
    gw.stop().await;
    echo.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn the_route_listing_shows_the_table_and_the_rules() {
    let member = Member::start().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set("QUEUE_PROTECTED_ROUTES", "POST /api/v1/posts/**"),
    )
    .await;
    let admin = member.admin_token(1).await;
    let res = call(
        Method::GET,
        format!("{}/admin/gateway/routes", gw.base_url()),
        Some(&admin),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let routes = body["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 8, "{body}");
    let comments = routes
        .iter()
        .find(|r| r["prefix"] == "/api/v1/comments")
        .unwrap();
    assert_eq!(comments["id"], "content");
    assert_eq!(comments["timeout_ms"], 3000);
    assert!(
        body["public_paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "POST /api/v1/auth/login")
    );
    assert_eq!(
        body["protected_routes"],
        serde_json::json!(["POST /api/v1/posts/**"])
    );
    assert_eq!(body["rate_limits"][0]["max"], 10);
    assert_eq!(body["rate_limits"][0]["key"], "ip");
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn a_downstream_that_keeps_timing_out_trips_the_breaker_and_is_refused_at_once() {
    let member = Member::start().await;
    let echo = echo_service().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set(
                "GATEWAY_ROUTES",
                format!("/api/v1/echo={}", echo.base_url()),
            )
            .set("GATEWAY_TIMEOUT_MS", "200")
            .set("CUSTOM_CLIENT_CB_WINDOW_SIZE", "2")
            .set("CUSTOM_CLIENT_CB_MINIMUM_CALLS", "2")
            .set("CUSTOM_CLIENT_CB_OPEN_WAIT_MS", "30000"),
    )
    .await;
    let base = gw.base_url();
    let token = member.token(1).await;
    for _ in 0..2 {
        let res = call(
            Method::GET,
            format!("{base}/api/v1/echo/slow"),
            Some(&token),
        )
        .await;
        assert_eq!(res.status(), 504);
    }
    let started = Instant::now();
    let res = call(
        Method::GET,
        format!("{base}/api/v1/echo/headers"),
        Some(&token),
    )
    .await;
    assert_eq!(res.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body = assert_json_error(res, "downstream_unavailable").await;
    assert!(
        body["message"].as_str().unwrap().contains("circuit open"),
        "{body}"
    );
    gw.stop().await;
    echo.stop().await;
    member.stop().await;
}
