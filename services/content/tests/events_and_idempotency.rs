//! Every write emits exactly one event of the right type; failed writes emit nothing;
//! Idempotency-Key makes retried creates safe.
#![allow(clippy::unwrap_used)]

mod common;

use common::spawn;
use reqwest::Method;
use serde_json::{Value, json};
use test_harness::kafka::wait_for_records;
use test_harness::platform::assert_json_error;

#[tokio::test]
async fn each_write_emits_exactly_one_event_of_its_type_to_the_days_topic() {
    let stack = spawn(&[("OUTBOX_POLL_INTERVAL_MS", "50")]).await;
    let (author, fan) = (stack.token(51).await, stack.token(52).await);
    let post = stack.create_post(&author, "events").await;
    let id = post["id"].as_i64().unwrap();
    let p = format!("/api/v1/posts/{id}");
    stack
        .send(
            Method::PATCH,
            &p,
            Some(&author),
            Some(json!({"body": "edited"})),
        )
        .await;
    stack
        .send(
            Method::PATCH,
            &p,
            Some(&author),
            Some(json!({"body": "edited"})),
        )
        .await; // no change: no event
    stack
        .send(Method::PUT, &format!("{p}/like"), Some(&fan), None)
        .await;
    stack
        .send(Method::PUT, &format!("{p}/like"), Some(&fan), None)
        .await; // already liked: no event
    stack
        .send(Method::DELETE, &format!("{p}/like"), Some(&fan), None)
        .await;
    let comment: Value = stack
        .send(
            Method::POST,
            &format!("{p}/comments"),
            Some(&fan),
            Some(json!({"body": "hi"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let c = format!("/api/v1/comments/{}", comment["id"]);
    stack
        .send(
            Method::PATCH,
            &c,
            Some(&fan),
            Some(json!({"body": "hello"})),
        )
        .await;
    stack
        .send(Method::PUT, &format!("{c}/like"), Some(&author), None)
        .await;
    stack
        .send(Method::DELETE, &format!("{c}/like"), Some(&author), None)
        .await;
    stack.send(Method::DELETE, &c, Some(&fan), None).await;
    // A failed request: comment on a missing post.
    assert_eq!(
        stack
            .send(
                Method::POST,
                "/api/v1/posts/987654/comments",
                Some(&fan),
                Some(json!({"body": "x"}))
            )
            .await
            .status(),
        404
    );
    stack.send(Method::DELETE, &p, Some(&author), None).await;

    let expected = [
        "POST_CREATE",
        "POST_UPDATE",
        "LIKE_POST",
        "LIKE_POST_CANCEL",
        "COMMENT_CREATE",
        "COMMENT_UPDATE",
        "LIKE_COMMENT",
        "LIKE_COMMENT_CANCEL",
        "COMMENT_DELETE",
        "POST_DELETE",
    ];
    let records =
        wait_for_records(&stack.brokers(), &stack.topic(), expected.len(), |_| true).await;
    let types: Vec<String> = records
        .iter()
        .map(|r| r.json().unwrap()["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types, expected,
        "one event per real change, in order (one key, one partition)"
    );
    assert!(
        records
            .iter()
            .all(|r| r.key.as_deref() == Some(&format!("post:{id}")[..]))
    );
    let delete = records.last().unwrap().json().unwrap();
    assert_eq!(
        delete["payload"]["body"], "edited",
        "payloads carry what consumers need"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_returns_the_first_result() {
    let stack = spawn(&[]).await;
    let token = stack.token(61).await;
    let create = |key: &str, body: &str| {
        let stack = &stack;
        let token = token.clone();
        let key = key.to_owned();
        let body = body.to_owned();
        async move {
            stack
                .client
                .post(stack.url("/api/v1/posts"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({"body": body}))
                .send()
                .await
                .unwrap()
        }
    };
    let first = create("retry-1", "only once").await;
    assert_eq!(first.status(), 201);
    assert_eq!(first.headers()["idempotency-replayed"], "false");
    let first: Value = first.json().await.unwrap();
    let again = create("retry-1", "only once").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);

    let res = create("retry-1", "a different post").await;
    assert_eq!(res.status(), 422);
    assert_json_error(res, "idempotency_key_reused").await;

    // Ten concurrent requests with one key: one post.
    let racing = (0..10).map(|_| create("race-1", "raced"));
    let mut ids = Vec::new();
    for res in futures_util::future::join_all(racing).await {
        assert_eq!(res.status(), 201);
        ids.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let mine: Value = stack
        .send(Method::GET, "/api/v1/posts?author=61", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2, "one per key");
    for bad in ["", "has space", &"k".repeat(300)] {
        let res = create(bad, "x").await;
        assert_eq!(res.status(), 422, "{bad:.10}");
    }
    wait_for_records(&stack.brokers(), &stack.topic(), 2, |_| true).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let events = test_harness::kafka::read_topic(&stack.brokers(), &stack.topic()).await;
    assert_eq!(
        events.len(),
        2,
        "two creates, two events; replays and losers emit nothing"
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_internal_api_pages_every_live_post_by_id() {
    let stack = spawn(&[]).await;
    let token = stack.token(71).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            stack.create_post(&token, &format!("post {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    stack
        .send(
            Method::DELETE,
            &format!("/api/v1/posts/{}", ids[3]),
            Some(&token),
            None,
        )
        .await;
    // As search calls it: with search's (development) service token for content.
    let search = auth::ServiceIdentity::development(service_runtime::ServiceName::Search)
        .token_for("content")
        .unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = stack
            .send(
                Method::GET,
                &format!("/internal/posts?after={after}&limit=3"),
                Some(&search),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    ids.remove(3);
    assert_eq!(seen, ids);
    assert_eq!(
        stack
            .send(
                Method::GET,
                "/internal/posts?limit=5000",
                Some(&search),
                None
            )
            .await
            .status(),
        400
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_internal_api_answers_its_callers_only() {
    let stack = spawn(&[]).await;
    let mint = |caller| {
        auth::ServiceIdentity::development(caller)
            .token_for("content")
            .unwrap()
    };
    use service_runtime::ServiceName::{Activity, Search, Timeline};
    for (caller, status) in [(Search, 200), (Timeline, 200), (Activity, 403)] {
        let res = stack
            .send(Method::GET, "/internal/posts", Some(&mint(caller)), None)
            .await;
        assert_eq!(res.status(), status, "{caller}");
    }
    // A member's access token is no service token; a token for member opens nothing here.
    let member = stack.token(1).await;
    let res = stack
        .send(Method::GET, "/internal/posts", Some(&member), None)
        .await;
    assert_eq!(res.status(), 401);
    let for_member = auth::ServiceIdentity::development(Search)
        .token_for("member")
        .unwrap();
    let res = stack
        .send(Method::GET, "/internal/posts", Some(&for_member), None)
        .await;
    assert_eq!(res.status(), 401);
    stack.stop().await;
}
