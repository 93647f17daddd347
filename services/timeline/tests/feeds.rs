//! Feeds built from real events (member and content running), on real Postgres, Redis and
//! tansu: order, paging while posts arrive, follow changes, rankings, deletes, replays,
//! backfill, member down, Redis down.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Stack, eventually, ids_of, spawn};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn feed_len(stack: &Stack, path: &str, token: &str, n: usize) {
    eventually(&format!("{n} items at {path}"), 30, || async {
        (stack.ids(path, token).await.len() == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn follow_feed_pages_in_order_without_gaps_while_posts_arrive() {
    let stack = spawn(&[]).await;
    let (_, reader) = stack.member("reader").await;
    let (alice_id, alice) = stack.member("alice").await;
    let (bob_id, bob) = stack.member("bob").await;
    let (_, carol) = stack.member("carol").await;
    stack.follow(&reader, alice_id, true).await;
    stack.follow(&reader, bob_id, true).await;
    let mut expected = Vec::new();
    for i in 0..12 {
        let (token, name) = if i % 2 == 0 {
            (&alice, "a")
        } else {
            (&bob, "b")
        };
        expected.push(stack.post(token, &format!("{name}{i}")).await);
    }
    stack.post(&carol, "not followed").await;
    expected.reverse(); // newest first
    feed_len(&stack, "/api/v1/timeline/following?limit=100", &reader, 12).await;

    // Page by 5 while new posts keep arriving at the top.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/timeline/following?limit=5&cursor={c}"),
            None => "/api/v1/timeline/following?limit=5".to_owned(),
        };
        let (status, _, page) = stack.feed(&path, &reader).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids_of(&page));
        stack.post(&alice, "arrives while paging").await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "the 12 posts, newest first, once each");

    // Items carry the author's profile from member.
    let (_, headers, page) = stack
        .feed("/api/v1/timeline/following?limit=100", &reader)
        .await;
    assert!(headers.get("x-degraded").is_none());
    let nicknames: HashSet<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["author"]["nickname"].as_str().unwrap())
        .collect();
    assert_eq!(nicknames, HashSet::from(["alice", "bob"]));
    stack.content.stop().await;
}

#[tokio::test]
async fn follow_and_unfollow_change_the_feed_and_my_post_shows_within_a_second() {
    let stack = spawn(&[]).await;
    let (_, reader) = stack.member("reader").await;
    let (alice_id, alice) = stack.member("alice").await;
    let (bob_id, bob) = stack.member("bob").await;
    let a = stack.post(&alice, "alice's").await;
    let b = stack.post(&bob, "bob's").await;
    stack.follow(&reader, alice_id, true).await;
    let first = eventually("alice's post", 30, || async {
        let ids = stack.ids("/api/v1/timeline/following", &reader).await;
        (ids == [a]).then_some(ids)
    })
    .await;
    assert_eq!(first, [a]);
    stack.follow(&reader, bob_id, true).await;
    eventually("bob's post after following bob", 30, || async {
        (stack.ids("/api/v1/timeline/following", &reader).await == [b, a]).then_some(())
    })
    .await;
    stack.follow(&reader, alice_id, false).await;
    eventually("alice gone after unfollowing", 30, || async {
        (stack.ids("/api/v1/timeline/following", &reader).await == [b]).then_some(())
    })
    .await;

    // Read-after-write: my own post in /me.
    let started = Instant::now();
    let mine = stack.post(&alice, "just now").await;
    eventually("my post in /me", 10, || async {
        stack
            .ids("/api/v1/timeline/me", &alice)
            .await
            .first()
            .is_some_and(|id| *id == mine)
            .then_some(())
    })
    .await;
    let took = started.elapsed();
    println!("read-after-write: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    stack.content.stop().await;
}

#[tokio::test]
async fn popular_and_most_commented_rank_and_deleted_posts_vanish() {
    let stack = spawn(&[("HOT_CACHE_SECONDS", "1")]).await;
    let (_, author) = stack.member("author").await;
    let mut fans = Vec::new();
    for i in 0..3 {
        fans.push(stack.member(&format!("fan{i}")).await.1);
    }
    let quiet = stack.post(&author, "quiet").await;
    let discussed = stack.post(&author, "discussed").await;
    let loved = stack.post(&author, "loved").await;
    for fan in &fans {
        stack
            .content(
                Method::PUT,
                &format!("/api/v1/posts/{loved}/like"),
                fan,
                None,
            )
            .await;
    }
    stack
        .content(
            Method::POST,
            &format!("/api/v1/posts/{loved}/comments"),
            &fans[0],
            Some(json!({"body": "nice"})),
        )
        .await;
    for fan in &fans[..2] {
        stack
            .content(
                Method::POST,
                &format!("/api/v1/posts/{discussed}/comments"),
                fan,
                Some(json!({"body": "hmm"})),
            )
            .await;
    }
    // hot rank: loved log10(3+3+2)=0.90, discussed log10(3+0+4)=0.85, quiet log10(3)=0.48.
    eventually("popular order", 30, || async {
        (stack
            .ids("/api/v1/timeline/popular?window=1h", &author)
            .await
            == [loved, discussed, quiet])
        .then_some(())
    })
    .await;
    eventually("most-commented order", 30, || async {
        (stack.ids("/api/v1/timeline/most-commented", &author).await == [discussed, loved])
            .then_some(())
    })
    .await;
    let (_, _, page) = stack
        .feed("/api/v1/timeline/popular?limit=1", &author)
        .await;
    assert!(page["items"][0]["score"].as_f64().unwrap() > 0.0);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, next) = stack
        .feed(
            &format!("/api/v1/timeline/popular?limit=5&cursor={cursor}"),
            &author,
        )
        .await;
    assert_eq!(ids_of(&next), [discussed, quiet]);

    // Deleted: gone from every list at once (the delete drops the hot caches).
    stack
        .content(
            Method::DELETE,
            &format!("/api/v1/posts/{loved}"),
            &author,
            None,
        )
        .await;
    eventually("the deleted post gone everywhere", 30, || async {
        let me = stack.ids("/api/v1/timeline/me", &author).await;
        let popular = stack.ids("/api/v1/timeline/popular", &author).await;
        let commented = stack.ids("/api/v1/timeline/most-commented", &author).await;
        (!me.contains(&loved) && !popular.contains(&loved) && !commented.contains(&loved))
            .then_some(())
    })
    .await;

    // Bad input: 400 with the JSON body.
    for path in [
        "/api/v1/timeline/popular?window=2h",
        "/api/v1/timeline/most-commented?window=forever",
        "/api/v1/timeline/following?limit=0",
        "/api/v1/timeline/me?cursor=garbage",
        "/api/v1/timeline/popular?cursor=garbage",
    ] {
        let (status, _, body) = stack.feed(path, &author).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], "bad_request", "{path}");
    }
    let res = stack
        .client
        .get(format!("{}/api/v1/timeline/me", stack.timeline_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    stack.content.stop().await;
}

#[tokio::test]
async fn replays_change_nothing_and_backfill_rebuilds_the_same_state() {
    let stack = spawn(&[]).await;
    let (_, reader) = stack.member("reader").await;
    let (alice_id, alice) = stack.member("alice").await;
    let (bob_id, _) = stack.member("bob").await;
    stack.follow(&reader, alice_id, true).await;
    stack.follow(&reader, bob_id, true).await;
    stack.follow(&reader, bob_id, false).await;
    let p1 = stack.post(&alice, "one").await;
    let p2 = stack.post(&alice, "two").await;
    stack
        .content(
            Method::PATCH,
            &format!("/api/v1/posts/{p1}"),
            &alice,
            Some(json!({"title": "one, edited", "body": "edited"})),
        )
        .await;
    stack
        .content(
            Method::PUT,
            &format!("/api/v1/posts/{p2}/like"),
            &reader,
            None,
        )
        .await;
    stack
        .content(
            Method::POST,
            &format!("/api/v1/posts/{p2}/comments"),
            &reader,
            Some(json!({"body": "first"})),
        )
        .await;
    let doomed = stack.post(&alice, "doomed").await;
    stack
        .content(
            Method::DELETE,
            &format!("/api/v1/posts/{doomed}"),
            &alice,
            None,
        )
        .await;
    let config = timeline::Config::from_env(stack.timeline_env.vars()).unwrap();
    let db = service_runtime::postgres::connect_lazy(&config.database).unwrap();
    let built = eventually("the event-built state", 30, || async {
        let (posts, follows, inbox) = timeline::store::snapshot(&db).await.unwrap();
        let done = posts.len() == 2
            && posts
                .iter()
                .any(|p| p.post_id == p2 && p.like_count == 1 && p.comment_count == 1)
            && posts
                .iter()
                .any(|p| p.title.as_deref() == Some("one, edited"))
            && follows.len() == 1
            // The reader's inbox: alice's two live posts (the deleted one left it).
            && inbox.len() == 2;
        done.then_some((posts, follows, inbox))
    })
    .await;

    // Replay: a second consumer group reads every event again into the same database.
    let replay_env = stack
        .timeline_env
        .clone()
        .set("TIMELINE_CONSUMER_GROUP", "timeline-replay");
    let replay = timeline::start(timeline::Config::from_env(replay_env.vars()).unwrap())
        .await
        .unwrap();
    // Wait until the replay group has handled every event again.
    let group = format!(
        "group=\"{}timeline-replay\"",
        stack.timeline_env.get("KAFKA_TOPIC_PREFIX").unwrap()
    );
    eventually("the replay to handle every event", 30, || async {
        let handled: f64 = stack
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("consumer_events_total") && l.contains(&group))
            .filter(|l| l.contains("outcome=\"handled\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (handled >= 10.0).then_some(())
    })
    .await;
    assert_eq!(timeline::store::snapshot(&db).await.unwrap(), built);
    replay.stop().await;

    // Backfill from empty into a fresh database equals the event-built state.
    let fresh = test_harness::TestEnv::new().postgres().await;
    let mut backfill_env = stack.timeline_env.clone();
    backfill_env = backfill_env.set("DATABASE_URL", fresh.get("DATABASE_URL").unwrap());
    let backfill_config = timeline::Config::from_env(backfill_env.vars()).unwrap();
    let report = timeline::backfill(backfill_config.clone()).await.unwrap();
    assert_eq!((report.posts, report.follows), (2, 1));
    let fresh_db = service_runtime::postgres::connect_lazy(&backfill_config.database).unwrap();
    assert_eq!(timeline::store::snapshot(&fresh_db).await.unwrap(), built);
    stack.content.stop().await;
}

#[tokio::test]
async fn member_down_gives_degraded_answers_and_the_breaker_opens_then_closes() {
    let mut stack = spawn(&[
        ("AUTHOR_CACHE_SECONDS", "1"),
        ("MEMBER_CLIENT_TIMEOUT_MS", "300"),
        ("MEMBER_CLIENT_CB_MINIMUM_CALLS", "2"),
        ("MEMBER_CLIENT_CB_WINDOW_SIZE", "4"),
        ("MEMBER_CLIENT_CB_OPEN_WAIT_MS", "1000"),
        ("MEMBER_CLIENT_CB_HALF_OPEN_CALLS", "1"),
    ])
    .await;
    let (_, alice) = stack.member("alice").await;
    stack.post(&alice, "mine").await;
    feed_len(&stack, "/api/v1/timeline/me", &alice, 1).await;
    stack.stop_member().await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the cached profile expires
    for _ in 0..4 {
        let started = Instant::now();
        let (status, headers, page) = stack.feed("/api/v1/timeline/me", &alice).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(headers.get("x-degraded").unwrap(), "authors");
        assert!(page["items"][0]["author"]["nickname"].is_null());
        assert!(page["items"][0]["author"]["id"].as_i64().is_some());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let metrics = stack.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("resilience_circuit_state")
                && l.contains("member")
                && l.ends_with(" 1")),
        "breaker open: {metrics}"
    );
    stack.start_member().await;
    eventually("the breaker to close and authors to return", 30, || async {
        let (_, headers, page) = stack.feed("/api/v1/timeline/me", &alice).await;
        (headers.get("x-degraded").is_none() && page["items"][0]["author"]["nickname"] == "alice")
            .then_some(())
    })
    .await;
    let metrics = stack.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("resilience_circuit_state")
                && l.contains("member")
                && l.ends_with(" 0"))
    );
    stack.content.stop().await;
}

#[tokio::test]
async fn redis_down_still_gives_correct_answers() {
    let closed = format!("redis://127.0.0.1:{}", test_harness::closed_port());
    let stack = spawn(&[("REDIS_URL", &closed)]).await;
    let (alice_id, alice) = stack.member("alice").await;
    let (_, reader) = stack.member("reader").await;
    stack.follow(&reader, alice_id, true).await;
    let p = stack.post(&alice, "no cache").await;
    eventually("the post without Redis", 30, || async {
        (stack.ids("/api/v1/timeline/following", &reader).await == [p]).then_some(())
    })
    .await;
    assert_eq!(stack.ids("/api/v1/timeline/me", &alice).await, [p]);
    assert_eq!(stack.ids("/api/v1/timeline/popular", &alice).await, [p]);
    stack.content.stop().await;
}

#[tokio::test]
async fn author_profiles_come_from_member_only_when_member_knows_timelines_key() {
    use auth::service_identity::{encode_key, public_key};
    let seed = [5_u8; 32];
    let mut stack = spawn(&[
        ("SERVICE_IDENTITY_KEY", &encode_key(&seed)),
        ("AUTHOR_CACHE_SECONDS", "1"),
    ])
    .await;
    let (_, alice) = stack.member("alice").await;
    stack.post(&alice, "mine").await;
    feed_len(&stack, "/api/v1/timeline/me", &alice, 1).await;
    // member knows only the development keys: timeline's own key is refused (401), so the
    // feed answers without profiles.
    let (status, headers, page) = stack.feed("/api/v1/timeline/me", &alice).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(headers.get("x-degraded").unwrap(), "authors");
    assert!(page["items"][0]["author"]["nickname"].is_null(), "{page}");
    // Once member lists timeline's public key, the same calls are answered.
    stack.stop_member().await;
    let peers = format!("timeline={}", encode_key(&public_key(&seed)));
    stack.member_env = stack
        .member_env
        .clone()
        .set("SERVICE_IDENTITY_PEERS", peers);
    stack.start_member().await;
    eventually("authors with timeline's own key", 30, || async {
        let (_, headers, page) = stack.feed("/api/v1/timeline/me", &alice).await;
        (headers.get("x-degraded").is_none() && page["items"][0]["author"]["nickname"] == "alice")
            .then_some(())
    })
    .await;
    stack.stop_member().await;
    stack.content.stop().await;
}
