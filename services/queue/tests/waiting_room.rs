//! The seed's waiting-room rules through the gateway, on the real Redis with member's real
//! JWKS.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Member, Sse, call, gateway, lineup, redis_conn, status};
use redis::AsyncCommands;
use reqwest::Method;

#[tokio::test]
async fn under_capacity_admits_at_once_and_over_capacity_queues_in_order() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "2")).await;
    let base = gw.base_url();
    for id in [1, 2] {
        let body = lineup(&base, &member.token(id).await).await;
        assert_eq!(body["status"], "ADMITTED", "{body}");
        assert!(
            body["admission_token"]
                .as_str()
                .is_some_and(|t| t.len() > 20),
            "{body}"
        );
        assert_eq!(body["allowed_in_seconds"], 240);
    }
    for (id, position) in [(3, 1), (4, 2)] {
        let body = lineup(&base, &member.token(id).await).await;
        assert_eq!(body["status"], "WAITING", "{body}");
        assert_eq!(body["position"], position, "{body}");
        assert!(body["admission_token"].is_null(), "{body}");
    }
    let polled = status(&base, &member.token(4).await).await;
    assert_eq!(
        (polled["status"].as_str(), polled["position"].as_u64()),
        (Some("WAITING"), Some(2))
    );
    assert_eq!(polled["waiting_count"], 2);
    assert_eq!(
        status(&base, &member.token(1).await).await["status"],
        "ADMITTED"
    );
    assert_eq!(
        status(&base, &member.token(9).await).await["status"],
        "NOT_IN_QUEUE"
    );
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn an_admitted_member_lining_up_again_stays_admitted() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1")).await;
    let base = gw.base_url();
    let token = member.token(1).await;
    assert_eq!(lineup(&base, &token).await["status"], "ADMITTED");
    assert_eq!(
        lineup(&base, &member.token(2).await).await["status"],
        "WAITING"
    );
    let again = lineup(&base, &token).await;
    assert_eq!(again["status"], "ADMITTED", "{again}");
    let mut redis = redis_conn().await;
    let waiting: u64 = redis
        .zcard(format!("{}queue:wait", member.prefix()))
        .await
        .unwrap();
    assert_eq!(waiting, 1, "the admitted member must not be queued");
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn lining_up_again_while_waiting_moves_to_the_back() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1")).await;
    let base = gw.base_url();
    lineup(&base, &member.token(1).await).await;
    let two = member.token(2).await;
    assert_eq!(lineup(&base, &two).await["position"], 1);
    assert_eq!(lineup(&base, &member.token(3).await).await["position"], 2);
    let again = lineup(&base, &two).await;
    assert_eq!(
        (again["position"].as_u64(), again["requeued"].as_bool()),
        (Some(2), Some(true)),
        "{again}"
    );
    assert_eq!(status(&base, &member.token(3).await).await["position"], 1);
    gw.stop().await;
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_lineups_admit_exactly_capacity_and_queue_the_rest_gap_free() {
    let member = Member::start().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set("ALLOWED_IN_MAX_CAPACITY", "100")
            .set("GATEWAY_RATE_LIMITS", "")
            // The scheduler must not admit anyone while we count.
            .set("QUEUE_SCHEDULER_INTERVAL_MS", "600000"),
    )
    .await;
    let base = gw.base_url();
    let mut tokens = Vec::new();
    for id in 1..=1000 {
        tokens.push(member.token(id).await);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let client = client.clone();
            let url = format!("{base}/api/v1/queue/lineup");
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let res = client.post(url).bearer_auth(token).send().await.unwrap();
                assert_eq!(res.status(), 200);
                res.json::<serde_json::Value>().await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    let mut positions = Vec::new();
    for task in tasks {
        let body = task.await.unwrap();
        match body["status"].as_str() {
            Some("ADMITTED") => admitted += 1,
            Some("WAITING") => positions.push(body["position"].as_u64().unwrap()),
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    assert_eq!(admitted, 100);
    assert_eq!(positions.len(), 900);
    positions.sort_unstable();
    assert_eq!(
        positions,
        (1..=900).collect::<Vec<u64>>(),
        "positions must be distinct and gap-free"
    );
    let mut redis = redis_conn().await;
    let allowed: u64 = redis
        .hlen(format!("{}allowedIn:users", member.prefix()))
        .await
        .unwrap();
    let waiting: u64 = redis
        .zcard(format!("{}queue:wait", member.prefix()))
        .await
        .unwrap();
    assert_eq!((allowed, waiting), (100, 900));
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn expiry_admits_as_many_as_expired_in_queue_order() {
    let member = Member::start().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set("ALLOWED_IN_MAX_CAPACITY", "3")
            .set("ALLOWED_IN_DURATION_SECONDS", "2"),
    )
    .await;
    let base = gw.base_url();
    let mut tokens = Vec::new();
    for id in 1..=8 {
        let token = member.token(id).await;
        lineup(&base, &token).await;
        tokens.push(token);
    }
    // Member 1 stays active (each lineup of an admitted member refreshes it); 2 and 3 idle.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(lineup(&base, &tokens[0]).await["status"], "ADMITTED");
    }
    let states: Vec<serde_json::Value> = {
        let mut out = Vec::new();
        for token in &tokens {
            out.push(status(&base, token).await);
        }
        out
    };
    let names: Vec<&str> = states
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ADMITTED",
            "NOT_IN_QUEUE",
            "NOT_IN_QUEUE",
            "ADMITTED",
            "ADMITTED",
            "WAITING",
            "WAITING",
            "WAITING"
        ],
        "two expired, so the two at the head (4, 5) were admitted"
    );
    let positions: Vec<u64> = states[5..]
        .iter()
        .map(|s| s["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3]);
    // Admissions from the queue now give an estimate.
    assert!(
        states[5]["estimated_wait_seconds"].as_u64().is_some(),
        "{}",
        states[5]
    );
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn leaving_frees_the_slot_for_the_head_of_the_queue() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1")).await;
    let base = gw.base_url();
    let (one, two, three, four) = (
        member.token(1).await,
        member.token(2).await,
        member.token(3).await,
        member.token(4).await,
    );
    for t in [&one, &two, &three, &four] {
        lineup(&base, t).await;
    }
    // 3 leaves the queue: 4 moves up.
    let res = call(
        Method::DELETE,
        format!("{base}/api/v1/queue/waiting-token"),
        Some(&three),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["removed"],
        true
    );
    assert_eq!(status(&base, &four).await["position"], 2);
    // 1 gives up the admission: 2 (the head) is admitted in the same step.
    let res = call(
        Method::DELETE,
        format!("{base}/api/v1/queue/allowed-in-token"),
        Some(&one),
    )
    .await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (
            body["removed"].as_bool(),
            body["admitted_from_queue"].as_u64()
        ),
        (Some(true), Some(1)),
        "{body}"
    );
    assert_eq!(status(&base, &two).await["status"], "ADMITTED");
    assert_eq!(status(&base, &four).await["position"], 1);
    assert_eq!(status(&base, &one).await["status"], "NOT_IN_QUEUE");
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn logout_through_the_gateway_leaves_the_waiting_room() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1")).await;
    let base = gw.base_url();
    let one = member.token(1).await;
    let two = member.token(2).await;
    lineup(&base, &one).await;
    lineup(&base, &two).await;
    let res = call(
        Method::POST,
        format!("{base}/api/v1/auth/logout"),
        Some(&one),
    )
    .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        status(&base, &two).await["status"],
        "ADMITTED",
        "the freed slot goes to the head"
    );
    // The logged-out token is blacklisted: the edge now refuses it.
    let res = call(
        Method::GET,
        format!("{base}/api/v1/queue/status"),
        Some(&one),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-relogin-required"], "true");
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn protected_routes_serve_admitted_members_and_refuse_others_with_403() {
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
    let gw = gateway(
        &member
            .gateway_env()
            .set("ALLOWED_IN_MAX_CAPACITY", "1")
            .set("CONTENT_URL", content.base_url())
            .set("QUEUE_PROTECTED_ROUTES", "POST /api/v1/posts"),
    )
    .await;
    let base = gw.base_url();
    let (one, two) = (member.token(1).await, member.token(2).await);
    lineup(&base, &one).await;
    lineup(&base, &two).await;
    let key = format!("{}allowedIn:users", member.prefix());
    let mut redis = redis_conn().await;
    let before: i64 = redis.hget(&key, "1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let res = common::client()
        .post(format!("{base}/api/v1/posts"))
        .bearer_auth(&one)
        .json(&serde_json::json!({"body": "during the event"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let after: i64 = redis.hget(&key, "1").await.unwrap();
    assert!(after > before, "each request refreshes the admission");
    let res = common::client()
        .post(format!("{base}/api/v1/posts"))
        .bearer_auth(&two)
        .json(&serde_json::json!({"body": "jumping the queue"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body = test_harness::platform::assert_json_error(res, "queue_admission_required").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/queue/lineup"),
        "{body}"
    );
    // Reading is not protected.
    let res = call(
        Method::GET,
        format!("{base}/api/v1/posts?author=1"),
        Some(&two),
    )
    .await;
    assert_eq!(res.status(), 200);
    gw.stop().await;
    content.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn abandoned_waiters_are_dropped_but_streaming_ones_stay() {
    let member = Member::start().await;
    let gw = gateway(
        &member
            .gateway_env()
            .set("ALLOWED_IN_MAX_CAPACITY", "1")
            .set("QUEUE_ABANDON_AFTER_SECONDS", "1"),
    )
    .await;
    let base = gw.base_url();
    let (one, ghost, streaming) = (
        member.token(1).await,
        member.token(2).await,
        member.token(3).await,
    );
    lineup(&base, &one).await;
    lineup(&base, &ghost).await;
    lineup(&base, &streaming).await;
    let mut sse = Sse::open(&base, &streaming).await;
    assert_eq!(
        sse.next(Duration::from_secs(2)).await.unwrap().data["position"],
        2
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut redis = redis_conn().await;
    let waiting: Vec<String> = redis
        .zrange(format!("{}queue:wait", member.prefix()), 0, -1)
        .await
        .unwrap();
    assert_eq!(
        waiting,
        vec!["3".to_owned()],
        "the ghost is gone, the streaming member stays"
    );
    // Older events are still buffered on the stream: the news arrives with the next tick.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = sse
            .next_named("position", left)
            .await
            .expect("moved up to 1");
        if event.data["position"] == 1 {
            break;
        }
    }
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn sse_sends_position_at_once_then_on_its_interval_with_heartbeats_and_pushes_admission() {
    stream_events(false).await;
}

#[tokio::test]
async fn the_lean_stream_port_sends_the_same_events() {
    stream_events(true).await;
}

/// Start a gateway (with the lean stream listener on a free port); the stream's base URL.
async fn gateway_with_streams(
    env: test_harness::TestEnv,
) -> (service_runtime::RunningService, String) {
    let env = env.set("QUEUE_STREAM_PORT", "0");
    let (gw, addr) = queue::start_listeners(queue::Config::from_env(env.vars()).unwrap())
        .await
        .unwrap();
    (gw, format!("http://{}", addr.unwrap()))
}

async fn stream_events(lean: bool) {
    let member = Member::start().await;
    let (gw, stream_base) =
        gateway_with_streams(member.gateway_env().set("ALLOWED_IN_MAX_CAPACITY", "1")).await;
    let base = gw.base_url();
    let stream_base = if lean { stream_base } else { base.clone() };
    let (one, two) = (member.token(1).await, member.token(2).await);
    lineup(&base, &one).await;
    lineup(&base, &two).await;
    let mut sse = Sse::open(&stream_base, &two).await;
    let first = sse
        .next(Duration::from_millis(150))
        .await
        .expect("a position at once");
    assert_eq!(first.name, "position");
    assert_eq!(first.data["status"], "WAITING");
    assert_eq!(
        (
            first.data["position"].as_u64(),
            first.data["waiting_count"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(first.data.get("estimated_wait_seconds").is_some());
    // Position every 200 ms and heartbeat every 300 ms (configured): count over ~1.3 s.
    let mut names = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_millis(1300);
    while let Some(e) = sse
        .next(until.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        names.push(e.name);
    }
    let positions = names.iter().filter(|n| *n == "position").count();
    let heartbeats = names.iter().filter(|n| *n == "heartbeat").count();
    assert!((4..=8).contains(&positions), "{names:?}");
    assert!((3..=5).contains(&heartbeats), "{names:?}");
    // Admission is pushed at once, not on the next tick.
    let started = std::time::Instant::now();
    call(
        Method::DELETE,
        format!("{base}/api/v1/queue/allowed-in-token"),
        Some(&one),
    )
    .await;
    let admitted = sse
        .next_named("admitted", Duration::from_secs(1))
        .await
        .expect("admitted");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(admitted.data["status"], "ADMITTED");
    assert!(admitted.data["admission_token"].as_str().is_some());
    assert!(
        sse.next(Duration::from_secs(1)).await.is_none(),
        "the stream ends after admission"
    );
    gw.stop().await;
    member.stop().await;
}

/// A raw request to the lean listener: its status code and JSON error code.
async fn raw(stream_base: &str, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = stream_base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer))
        .await
        .expect("the listener closes after an error")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    (status, body["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_lean_stream_port_refuses_what_the_edge_refuses_with_json() {
    let member = Member::start().await;
    let (gw, stream_base) = gateway_with_streams(member.gateway_env()).await;
    let token = member.token(8).await;
    let get = |auth: &str| {
        format!("GET /api/v1/queue/stream HTTP/1.1\r\nHost: x\r\n{auth}\r\n").into_bytes()
    };
    assert_eq!(
        raw(&stream_base, &get("")).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        raw(&stream_base, &get("Authorization: Bearer not.a.jwt\r\n")).await,
        (401, "invalid_token".into())
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(
        raw(&stream_base, &get(&bearer)).await,
        (404, "not_in_queue".into()),
        "line up first"
    );
    assert_eq!(
        raw(
            &stream_base,
            format!("GET /api/v1/posts HTTP/1.1\r\n{bearer}\r\n").as_bytes()
        )
        .await,
        (404, "not_found".into())
    );
    assert_eq!(
        raw(
            &stream_base,
            format!("POST /api/v1/queue/stream HTTP/1.1\r\n{bearer}\r\n").as_bytes()
        )
        .await,
        (405, "method_not_allowed".into())
    );
    assert_eq!(
        raw(&stream_base, b"\x00\x01 garbage\r\n\r\n").await,
        (400, "bad_request".into())
    );
    let huge = format!(
        "GET /api/v1/queue/stream HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(
        raw(&stream_base, huge.as_bytes()).await.0,
        431,
        "an oversized head is refused, not buffered"
    );
    // Once lined up, the same request streams; a spoofed identity header changes nothing.
    lineup(&gw.base_url(), &token).await;
    let mut sse = Sse::open(&stream_base, &token).await;
    let first = sse.next(Duration::from_secs(2)).await.expect("an event");
    assert_eq!(first.data["status"], "ADMITTED");
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn a_stream_for_someone_not_in_the_queue_is_404_json() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env()).await;
    let res = call(
        Method::GET,
        format!("{}/api/v1/queue/stream", gw.base_url()),
        Some(&member.token(5).await),
    )
    .await;
    assert_eq!(res.status(), 404);
    test_harness::platform::assert_json_error(res, "not_in_queue").await;
    gw.stop().await;
    member.stop().await;
}

#[tokio::test]
async fn the_admission_token_verifies_against_the_published_key() {
    let member = Member::start().await;
    let gw = gateway(&member.gateway_env()).await;
    let base = gw.base_url();
    let body = lineup(&base, &member.token(77).await).await;
    let token = body["admission_token"].as_str().unwrap();
    // No token needed for the key set.
    let jwks: serde_json::Value = call(Method::GET, format!("{base}/api/v1/queue/jwks.json"), None)
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["dailyfeed-queue"]);
    let claims = jsonwebtoken::decode::<queue::AdmissionClaims>(token, &decoding, &validation)
        .unwrap()
        .claims;
    assert_eq!(
        (claims.sub.as_str(), claims.typ.as_str()),
        ("77", "admission")
    );
    assert!(claims.exp - claims.iat <= 60, "short-lived");
    // It is not an access token: the edge refuses it as one.
    let res = call(
        Method::GET,
        format!("{base}/api/v1/queue/status"),
        Some(token),
    )
    .await;
    assert_eq!(res.status(), 401);
    gw.stop().await;
    member.stop().await;
}
