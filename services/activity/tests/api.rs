//! The activity API: paging and filters, bad input, "members I follow" with member up, down
//! and hanging.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{eventually, spawn};
use contracts::{EventEnvelope, EventType};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_harness::platform::assert_json_error;

#[tokio::test]
async fn pages_cover_everything_once_newest_first_and_filter_by_type() {
    let stack = spawn(&[]).await;
    let member = 301;
    let token = stack.token(member).await;
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    // 25 events; several share a millisecond, so the cursor's tie-break matters.
    for i in 0..25_i64 {
        let kind = if i % 5 == 0 {
            EventType::CommentCreate
        } else {
            EventType::PostCreate
        };
        let mut event =
            EventEnvelope::new(kind, member, 10_000 + i, json!({"post_id": 10_000 + i}));
        event.occurred_at = base + chrono::Duration::milliseconds(i / 3);
        stack.publish(&event).await;
    }
    eventually("25 documents", 30, || async {
        (stack.stored(member).await.len() == 25).then_some(())
    })
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/activities/me?limit=10&cursor={c}"),
            None => "/api/v1/activities/me?limit=10".to_owned(),
        };
        let (status, page) = stack.activities(&path, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["occurred_at"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().to_owned(),
                item["subject_id"].as_i64().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let unique: HashSet<i64> = seen.iter().map(|s| s.2).collect();
    assert_eq!(unique.len(), 25, "no duplicates across pages");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| (&b.0, &b.1).cmp(&(&a.0, &a.1)));
    assert_eq!(seen, sorted, "newest first");

    let comments = stack
        .listed_types(
            "/api/v1/activities/me?type=COMMENT_CREATE&limit=100",
            &token,
        )
        .await;
    assert_eq!(comments.len(), 5);
    let both = stack
        .listed_types(
            "/api/v1/activities/me?type=comment_create,POST_CREATE&limit=100",
            &token,
        )
        .await;
    assert_eq!(both.len(), 25);
    stack.content.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_errors() {
    let stack = spawn(&[]).await;
    let token = stack.token(302).await;
    let cases = [
        ("/api/v1/activities/me?limit=0", "bad_request"),
        ("/api/v1/activities/me?limit=101", "bad_request"),
        ("/api/v1/activities/me?limit=ten", "bad_request"),
        ("/api/v1/activities/me?cursor=not-a-cursor", "bad_request"),
        ("/api/v1/activities/me?type=POST_EXPLODE", "bad_request"),
        ("/api/v1/activities/me?type=LIKE_POST_CANCEL", "bad_request"),
        ("/api/v1/activities/following?type=NOPE", "bad_request"),
        ("/api/v1/activities/members/0", "bad_request"),
        ("/api/v1/activities/members/abc", "bad_request"),
    ];
    for (path, code) in cases {
        let res = stack
            .client
            .get(format!("{}{path}", stack.activity_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = assert_json_error(res, code).await;
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}"
        );
    }
    // A cursor from another endpoint's key or a tampered one is refused, not trusted.
    let res = stack
        .client
        .get(format!(
            "{}/api/v1/activities/me?cursor=eyJ4IjoxfQ.AAAA",
            stack.activity_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // No token, or a bad one: 401 with the JSON body.
    for path in [
        "/api/v1/activities/me",
        "/api/v1/activities/following",
        "/api/v1/activities/members/1",
    ] {
        let res = stack
            .client
            .get(format!("{}{path}", stack.activity_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_json_error(res, "unauthorized").await;
    }
    let res = stack
        .client
        .get(format!("{}/api/v1/activities/me", stack.activity_url()))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    stack.content.stop().await;
}

async fn follow(stack: &common::Stack, token: &str, target: i64) {
    let (status, body) = stack
        .call(
            Method::POST,
            &format!("{}/api/v1/members/{target}/follow", stack.member_url()),
            Some(token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

fn authors(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["member_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn following_shows_followed_members_and_503s_when_member_is_down() {
    let mut stack = spawn(&[
        ("FOLLOWING_CACHE_SECONDS", "300"),
        ("MEMBER_CLIENT_TIMEOUT_MS", "500"),
    ])
    .await;
    let (reader, reader_token) = stack.register("reader").await;
    let (alice, alice_token) = stack.register("alice").await;
    let (bob, bob_token) = stack.register("bob").await;
    follow(&stack, &reader_token, alice).await;
    stack.create_post(&alice_token, "from alice").await;
    stack.create_post(&bob_token, "from bob").await;
    let page = eventually("alice's post in the feed", 30, || async {
        let (status, page) = stack
            .activities("/api/v1/activities/following", &reader_token)
            .await;
        (status == StatusCode::OK && authors(&page) == [alice]).then_some(page)
    })
    .await;
    assert_eq!(page["items"][0]["type"], "POST_CREATE");

    // Following bob: the FOLLOW event drops the cached list (cached for 300 s), so bob's
    // post shows up without waiting for the cache to expire.
    follow(&stack, &reader_token, bob).await;
    eventually("bob in the feed", 30, || async {
        let (_, page) = stack
            .activities("/api/v1/activities/following", &reader_token)
            .await;
        let mut got = authors(&page);
        got.sort_unstable();
        let mut want = vec![alice, bob];
        want.sort_unstable();
        (got == want).then_some(())
    })
    .await;
    // The reader's own FOLLOWs are their activity, not the feed's.
    assert_eq!(
        stack
            .listed_types("/api/v1/activities/me", &reader_token)
            .await,
        ["FOLLOW", "FOLLOW"]
    );

    // member goes down: a cached list still answers; an uncached one is a fast 503.
    stack.stop_member().await;
    let (status, _) = stack
        .activities("/api/v1/activities/following", &reader_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let stranger = stack.token(999_001).await;
    let started = Instant::now();
    let res = stack
        .client
        .get(format!(
            "{}/api/v1/activities/following",
            stack.activity_url()
        ))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body = assert_json_error(res, "member_unavailable").await;
    assert!(body["message"].as_str().unwrap().contains("member"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let _ = (reader,);
    stack.content.stop().await;
}

#[tokio::test]
async fn a_hanging_member_service_costs_one_timeout_not_a_hang() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut stack = common::spawn_without_activity().await;
    // Tokens still verify against the real member's keys.
    let jwks = format!("{}/.well-known/jwks.json", stack.member_url());
    stack
        .start_activity(&[
            ("MEMBER_URL", &hanging),
            ("JWKS_URL", &jwks),
            ("MEMBER_CLIENT_TIMEOUT_MS", "300"),
            ("MEMBER_CLIENT_RETRY_MAX_ATTEMPTS", "1"),
        ])
        .await;
    let token = stack.token(303).await;
    let started = Instant::now();
    let res = stack
        .client
        .get(format!(
            "{}/api/v1/activities/following",
            stack.activity_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = assert_json_error(res, "member_unavailable").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{body}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    stack.content.stop().await;
}
