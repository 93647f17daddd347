//! Content writes → Kafka → activity documents, on real servers: exactly one document per
//! event however often it is delivered, nothing lost while Mongo or activity is down, poison
//! to the dead letters, likes and deletes that leave nothing misleading.
#![allow(clippy::unwrap_used)]

mod common;

use common::{eventually, spawn, spawn_without_activity};
use contracts::{EventEnvelope, EventType};
use reqwest::{Method, StatusCode};
use serde_json::json;
use test_harness::MongoServer;

#[tokio::test]
async fn content_writes_become_activity_documents() {
    let stack = spawn(&[]).await;
    let (author, fan) = (41, 42);
    let (author_token, fan_token) = (stack.token(author).await, stack.token(fan).await);
    let post = stack.create_post(&author_token, "hello activity").await;
    let comment = stack
        .content(
            Method::POST,
            &format!("/api/v1/posts/{post}/comments"),
            &fan_token,
            Some(json!({"body": "nice post"})),
        )
        .await;
    let comment_id = comment["id"].as_i64().unwrap();
    stack
        .content(
            Method::PUT,
            &format!("/api/v1/posts/{post}/like"),
            &fan_token,
            None,
        )
        .await;
    stack
        .content(
            Method::PUT,
            &format!("/api/v1/comments/{comment_id}/like"),
            &author_token,
            None,
        )
        .await;
    stack
        .content(
            Method::PATCH,
            &format!("/api/v1/posts/{post}"),
            &author_token,
            Some(json!({"body": "edited"})),
        )
        .await;

    let fan_types = eventually("the fan's activity", 30, || async {
        let types = stack
            .listed_types("/api/v1/activities/me", &fan_token)
            .await;
        (types.len() == 2).then_some(types)
    })
    .await;
    assert_eq!(fan_types, ["LIKE_POST", "COMMENT_CREATE"]);
    let author_types = eventually("the author's activity", 30, || async {
        let types = stack
            .listed_types("/api/v1/activities/me", &author_token)
            .await;
        (types.len() == 3).then_some(types)
    })
    .await;
    assert_eq!(author_types, ["POST_UPDATE", "LIKE_COMMENT", "POST_CREATE"]);

    // The documents carry what a banner needs.
    let (_, page) = stack
        .activities("/api/v1/activities/me?type=COMMENT_CREATE", &fan_token)
        .await;
    let item = &page["items"][0];
    assert_eq!(item["subject_type"], "comment");
    assert_eq!(item["subject_id"], comment_id);
    assert_eq!(item["post_id"], post);
    assert_eq!(item["target_member_id"], author);
    assert_eq!(item["snapshot"]["excerpt"], "nice post");
    let (_, page) = stack
        .activities("/api/v1/activities/me?type=POST_CREATE", &author_token)
        .await;
    assert_eq!(page["items"][0]["snapshot"]["title"], "hello activity");
    // Anyone signed in may read a member's activity.
    let (status, page) = stack
        .activities(&format!("/api/v1/activities/members/{fan}"), &author_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    // One stored document per event, each with its dedup key.
    let stored = stack.stored(fan).await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|a| a.dedup_key.starts_with("member_activity:kafka_event:"))
    );
    stack.content.stop().await;
}

#[tokio::test]
async fn like_then_cancel_leaves_no_liked_entry() {
    let stack = spawn(&[]).await;
    let author = stack.token(51).await;
    let (fan_id, fan) = (52, stack.token(52).await);
    let post = stack.create_post(&author, "likeable").await;
    let like = format!("/api/v1/posts/{post}/like");
    stack.content(Method::PUT, &like, &fan, None).await;
    stack.content(Method::DELETE, &like, &fan, None).await;
    stack.content(Method::PUT, &like, &fan, None).await;
    // like → cancel → like: the second like is listed, once.
    let stored = eventually("three toggles stored", 30, || async {
        let stored = stack.stored(fan_id).await;
        (stored.len() == 3).then_some(stored)
    })
    .await;
    let listed = stack.listed_types("/api/v1/activities/me", &fan).await;
    assert_eq!(listed, ["LIKE_POST"]);
    let (_, page) = stack.activities("/api/v1/activities/me", &fan).await;
    assert_eq!(page["items"][0]["id"], stored[2].event_id.as_str());
    // … and cancelling again leaves nothing.
    stack.content(Method::DELETE, &like, &fan, None).await;
    // (A document is stored before it cancels its like: wait for the end state.)
    eventually("the second cancel to hide the like", 30, || async {
        (stack.stored(fan_id).await.len() == 4
            && stack
                .listed_types("/api/v1/activities/me", &fan)
                .await
                .is_empty())
        .then_some(())
    })
    .await;

    // A like that arrives after its cancel (a re-driven dead letter) is cancelled too.
    let mut late_like = EventEnvelope::new(EventType::LikePost, 53, 777, json!({"post_id": 777}));
    let cancel = EventEnvelope::new(EventType::LikePostCancel, 53, 777, json!({"post_id": 777}));
    late_like.occurred_at = cancel.occurred_at - chrono::Duration::seconds(5);
    stack.publish(&cancel).await;
    stack.publish(&late_like).await;
    let stored = eventually("the late like, hidden", 30, || async {
        let stored = stack.stored(53).await;
        (stored.len() == 2 && stored.iter().all(|a| !a.visible)).then_some(stored)
    })
    .await;
    let cancel_doc = stored
        .iter()
        .find(|a| a.activity_type == "LIKE_POST_CANCEL")
        .unwrap();
    assert_eq!(
        cancel_doc.cancels.as_deref(),
        Some(late_like.event_id.to_string().as_str())
    );
    stack.content.stop().await;
}

#[tokio::test]
async fn deleting_a_post_hides_what_was_done_to_it() {
    let stack = spawn(&[]).await;
    let (author_id, author) = (61, stack.token(61).await);
    let (fan_id, fan) = (62, stack.token(62).await);
    let post = stack.create_post(&author, "short-lived").await;
    stack
        .content(
            Method::POST,
            &format!("/api/v1/posts/{post}/comments"),
            &fan,
            Some(json!({"body": "first"})),
        )
        .await;
    stack
        .content(
            Method::PUT,
            &format!("/api/v1/posts/{post}/like"),
            &fan,
            None,
        )
        .await;
    eventually("the fan's two activities", 30, || async {
        (stack
            .listed_types("/api/v1/activities/me", &fan)
            .await
            .len()
            == 2)
            .then_some(())
    })
    .await;
    stack
        .content(
            Method::DELETE,
            &format!("/api/v1/posts/{post}"),
            &author,
            None,
        )
        .await;
    let listed = eventually("the delete", 30, || async {
        let listed = stack.listed_types("/api/v1/activities/me", &author).await;
        (listed == ["POST_DELETE"]).then_some(listed)
    })
    .await;
    assert_eq!(listed, ["POST_DELETE"]);
    assert!(
        stack
            .listed_types("/api/v1/activities/me", &fan)
            .await
            .is_empty()
    );
    // Hidden, not lost.
    assert_eq!(stack.stored(fan_id).await.len(), 2);
    assert_eq!(stack.stored(author_id).await.len(), 2);
    stack.content.stop().await;
}

#[tokio::test]
async fn redelivered_events_never_duplicate_even_when_redis_forgot_them() {
    let mut stack = spawn(&[]).await;
    let event = EventEnvelope::new(
        EventType::PostCreate,
        71,
        7001,
        json!({"post_id": 7001, "author_id": 71, "title": "once"}),
    );
    // The same record twice: Redis dedup skips the second.
    stack.publish(&event).await;
    stack.publish(&event).await;
    let marker = EventEnvelope::new(EventType::PostCreate, 71, 7002, json!({"post_id": 7002}));
    stack.publish(&marker).await;
    eventually("the marker", 30, || async {
        (stack.stored(71).await.len() == 2).then_some(())
    })
    .await;
    let metrics = stack
        .client
        .get(format!("{}/metrics", stack.activity_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("consumer_events_total") && l.contains("outcome=\"duplicate\"")),
        "{metrics}"
    );

    // Redis loses every dedup key; the record comes again: the unique index holds.
    let redis = redis::Client::open(stack.activity_env.get("REDIS_URL").unwrap()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}*", stack.activity_env.get("REDIS_KEY_PREFIX").unwrap());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    stack.publish(&event).await;
    let second_marker =
        EventEnvelope::new(EventType::PostCreate, 71, 7003, json!({"post_id": 7003}));
    stack.publish(&second_marker).await;
    eventually("the second marker", 30, || async {
        (stack.stored(71).await.len() == 3).then_some(())
    })
    .await;

    // Offsets reset: a new consumer group reads the topics from the beginning.
    stack.stop_activity().await;
    stack
        .start_activity(&[("ACTIVITY_CONSUMER_GROUP", "activity-replay")])
        .await;
    let third_marker =
        EventEnvelope::new(EventType::PostCreate, 71, 7004, json!({"post_id": 7004}));
    stack.publish(&third_marker).await;
    eventually("the replay to reach the third marker", 30, || async {
        (stack.stored(71).await.len() == 4).then_some(())
    })
    .await;
    let stored = stack.stored(71).await;
    let subjects: Vec<i64> = stored.iter().map(|a| a.subject_id).collect();
    assert_eq!(subjects, [7001, 7002, 7003, 7004]);
    stack.content.stop().await;
}

#[tokio::test]
async fn poison_goes_to_the_dead_letters_and_the_rest_flows() {
    let stack = spawn(&[]).await;
    let carrier = EventEnvelope::new(EventType::PostCreate, 81, 8001, json!({}));
    stack.publish_raw(&carrier, b"{not json").await;
    let mut unknown = serde_json::to_value(&carrier).unwrap();
    unknown["event_type"] = json!("POST_EXPLODE");
    stack
        .publish_raw(&carrier, &serde_json::to_vec(&unknown).unwrap())
        .await;
    let good = EventEnvelope::new(EventType::PostCreate, 81, 8002, json!({"post_id": 8002}));
    stack.publish(&good).await;
    eventually("the good event", 30, || async {
        (stack.stored(81).await.len() == 1).then_some(())
    })
    .await;
    let dlt = format!(
        "{}activity-dlt",
        stack.activity_env.get("KAFKA_TOPIC_PREFIX").unwrap()
    );
    let brokers = stack.activity_env.get("KAFKA_BROKERS").unwrap().to_owned();
    let dead = test_harness::kafka::wait_for_records(&brokers, &dlt, 2, |_| true).await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].payload, b"{not json");
    assert!(dead.iter().all(|r| r.headers.contains_key("dlt.error")));
    stack.content.stop().await;
}

#[tokio::test]
async fn content_is_unaffected_while_activity_is_down_and_activity_catches_up() {
    let mut stack = spawn_without_activity().await;
    let author = stack.token(91).await;
    let started = std::time::Instant::now();
    for i in 0..5 {
        stack
            .create_post(&author, &format!("while activity sleeps {i}"))
            .await;
    }
    // Writes answer at content's own speed: nothing waits on activity.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    stack.start_activity(&[]).await;
    let listed = eventually("activity to catch up", 30, || async {
        let listed = stack.listed_types("/api/v1/activities/me", &author).await;
        (listed.len() == 5).then_some(listed)
    })
    .await;
    assert!(listed.iter().all(|t| t == "POST_CREATE"));
    stack.content.stop().await;
}

#[tokio::test]
async fn mongo_outage_pauses_the_consumer_and_loses_nothing() {
    let mut mongo = MongoServer::start().await;
    let stack = spawn(&[("MONGODB_URI", &mongo.uri("activity_outage"))]).await;
    let author = stack.token(95).await;
    for i in 0..3 {
        stack.create_post(&author, &format!("before {i}")).await;
    }
    eventually("the first three", 30, || async {
        (stack
            .listed_types("/api/v1/activities/me", &author)
            .await
            .len()
            == 3)
            .then_some(())
    })
    .await;

    mongo.stop().await;
    test_harness::platform::assert_not_ready_naming(&stack.activity_url(), "mongodb").await;
    // Reads answer 503, not 500, while the store is away.
    let (status, body) = stack.activities("/api/v1/activities/me", &author).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "store_unavailable");
    for i in 0..4 {
        stack.create_post(&author, &format!("during {i}")).await;
    }
    // Let the consumer meet the outage (and back off) before the store returns.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    mongo.restart().await;

    let (_, page) = eventually("all seven after the outage", 60, || async {
        let (status, page) = stack
            .activities("/api/v1/activities/me?limit=50", &author)
            .await;
        (status == StatusCode::OK && page["items"].as_array().unwrap().len() == 7)
            .then_some((status, page))
    })
    .await;
    let titles: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["snapshot"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "during 3", "during 2", "during 1", "during 0", "before 2", "before 1", "before 0"
        ]
    );
    stack.content.stop().await;
}
