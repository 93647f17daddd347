//! Profiles, follows (idempotent, paginated), the internal batch endpoint, and the
//! FOLLOW/UNFOLLOW events on Kafka.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::spawn;
use serde_json::{Value, json};
use test_harness::platform::assert_json_error;

#[tokio::test]
async fn profiles_can_be_read_and_edited_with_validation() {
    let app = spawn(&[]).await;
    let (id, access, _) = app.member("profile").await;
    let res = app
        .client
        .patch(app.url("/api/v1/members/me"))
        .bearer_auth(&access)
        .json(&json!({"nickname": "  데일리피드  ", "bio": "안녕하세요", "profile_image_id": "img_123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(
        (me["nickname"].as_str(), me["profile_image_id"].as_str()),
        (Some("데일리피드"), Some("img_123"))
    );
    let res = app
        .client
        .patch(app.url("/api/v1/members/me"))
        .bearer_auth(&access)
        .json(&json!({"profile_image_id": null}))
        .send()
        .await
        .unwrap();
    assert!(
        res.json::<Value>().await.unwrap()["profile_image_id"].is_null(),
        "null clears"
    );

    let res = app
        .client
        .patch(app.url("/api/v1/members/me"))
        .bearer_auth(&access)
        .json(
            &json!({"nickname": "x", "bio": "b".repeat(501), "profile_image_id": "../etc/passwd"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body = assert_json_error(res, "validation_failed").await;
    assert_eq!(body["fields"].as_array().unwrap().len(), 3);
    let res = app
        .client
        .patch(app.url("/api/v1/members/me"))
        .bearer_auth(&access)
        .json(&json!({"email": "takeover@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "unknown fields are refused, not ignored");

    let public: Value = app
        .get(&format!("/api/v1/members/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["nickname"], "데일리피드");
    assert!(public.get("email").is_none(), "emails are private");
    assert!(public.get("following").is_none());
    for (path, status) in [
        ("/api/v1/members/999999999", 404),
        ("/api/v1/members/abc", 400),
        ("/api/v1/members/0", 400),
        ("/api/v1/members/99999999999999999999", 400),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), status, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn follow_and_unfollow_are_idempotent_and_counted() {
    let app = spawn(&[]).await;
    let (a, a_token, _) = app.member("a").await;
    let (b, _, _) = app.member("b").await;
    let follow = |token: String, target: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!("/api/v1/members/{target}/follow")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(follow(a_token.clone(), b.to_string()).await.status(), 204);
    }
    let profile: Value = app
        .get_as(&format!("/api/v1/members/{b}"), &a_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["followers_count"], 1);
    assert_eq!(profile["following"], true);
    let me: Value = app
        .get(&format!("/api/v1/members/{a}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["followings_count"], 1);

    // Concurrent follows by one member still make one edge.
    let (c, c_token, _) = app.member("c").await;
    let racing = (0..10).map(|_| follow(c_token.clone(), b.to_string()));
    futures_util::future::join_all(racing).await;
    let profile: Value = app
        .get(&format!("/api/v1/members/{b}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["followers_count"], 2);

    for _ in 0..2 {
        let res = app
            .client
            .delete(app.url(&format!("/api/v1/members/{b}/follow")))
            .bearer_auth(&a_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    let profile: Value = app
        .get(&format!("/api/v1/members/{b}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["followers_count"], 1);

    let res = follow(a_token.clone(), a.to_string()).await;
    assert_eq!(res.status(), 400, "not yourself");
    let res = follow(a_token.clone(), "987654321".into()).await;
    assert_eq!(res.status(), 404);
    let res = follow(a_token.clone(), "-5".into()).await;
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .post(app.url(&format!("/api/v1/members/{c}/follow")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn follower_lists_page_newest_first_without_gaps_or_duplicates() {
    let app = spawn(&[]).await;
    let (star, _, _) = app.member("star").await;
    let mut fans = Vec::new();
    for i in 0..25 {
        let (fan, token, _) = app.member(&format!("fan{i}")).await;
        let res = app
            .client
            .post(app.url(&format!("/api/v1/members/{star}/follow")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        fans.push(fan);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/members/{star}/followers?limit=10&cursor={c}"),
            None => format!("/api/v1/members/{star}/followers?limit=10"),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    fans.reverse();
    assert_eq!(seen, fans, "newest first, every follower once");

    let res = app
        .get(&format!(
            "/api/v1/members/{star}/followers?cursor=eyJmb28iOjF9.AAAAAAAAAAAAAAAAAAAAAA"
        ))
        .await;
    assert_eq!(res.status(), 400);
    assert_json_error(res, "bad_request").await;
    assert_eq!(
        app.get(&format!("/api/v1/members/{star}/followers?limit=1000"))
            .await
            .status(),
        400
    );
    let followings: Value = app
        .get(&format!("/api/v1/members/{}/followings", fans[0]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(followings["items"][0]["id"], star);
    app.stop().await;
}

#[tokio::test]
async fn the_batch_endpoint_serves_summaries_to_other_services() {
    let app = spawn(&[]).await;
    let (a, _, _) = app.member("batch-a").await;
    let (b, _, _) = app.member("batch-b").await;
    let res = app
        .post_internal("/internal/members/batch", json!({"ids": [b, a, a, 424242]}))
        .await;
    let body: Value = res.json().await.unwrap();
    let ids: Vec<i64> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a.min(b), a.max(b)]);
    let too_many: Vec<i64> = (1..=101).collect();
    let res = app
        .post_internal("/internal/members/batch", json!({"ids": too_many}))
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        app.post_internal("/internal/members/batch", json!({"ids": "1,2"}))
            .await
            .status(),
        422
    );
    app.stop().await;
}

#[tokio::test]
async fn follow_and_unfollow_publish_events_to_the_days_member_topic() {
    let app = spawn(&[]).await;
    let (a, token, _) = app.member("pub-a").await;
    let (b, _, _) = app.member("pub-b").await;
    app.client
        .post(app.url(&format!("/api/v1/members/{b}/follow")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    app.client
        .post(app.url(&format!("/api/v1/members/{b}/follow")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    app.client
        .delete(app.url(&format!("/api/v1/members/{b}/follow")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    let prefix = app.env.get("KAFKA_TOPIC_PREFIX").unwrap().to_owned();
    let brokers = app.env.get("KAFKA_BROKERS").unwrap().to_owned();
    let topic = format!(
        "{prefix}member-events-{}",
        chrono::Utc::now().format("%Y%m%d")
    );
    let records = test_harness::kafka::wait_for_records(&brokers, &topic, 2, |r| {
        r.json().is_some_and(|e| e["event_type"] != "MEMBER_CREATE")
    })
    .await;
    let types: Vec<(String, i64, i64)> = records
        .iter()
        .chain(
            test_harness::kafka::read_topic(&brokers, &topic)
                .await
                .iter()
                .filter(|r| r.json().is_some_and(|e| e["event_type"] == "MEMBER_CREATE")),
        )
        .filter_map(|r| r.json())
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_owned(),
                e["actor_id"].as_i64().unwrap(),
                e["subject_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let follows: Vec<&(String, i64, i64)> = types
        .iter()
        .filter(|t| t.0 == "FOLLOW" || t.0 == "UNFOLLOW")
        .collect();
    assert_eq!(
        follows,
        vec![&("FOLLOW".to_owned(), a, b), &("UNFOLLOW".to_owned(), a, b)],
        "one FOLLOW (the repeat changed nothing) then one UNFOLLOW, in order"
    );
    let created: HashSet<i64> = types
        .iter()
        .filter(|t| t.0 == "MEMBER_CREATE")
        .map(|t| t.1)
        .collect();
    assert!(created.is_subset(&HashSet::from([a, b])));
    app.stop().await;
}
