//! The outbox relay against the real broker and Postgres.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{content_topic, drain, fixture, read_topic, relay};
use sea_orm::ConnectionTrait;
use test_harness::{Engine, TansuBroker};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn events_reach_their_days_topic_once_and_in_order_per_aggregate() {
    let fx = fixture(&[]).await;
    let day1 = Utc.with_ymd_and_hms(2026, 11, 24, 23, 59, 59).unwrap();
    let day2 = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    let mut appended = fx.append(60, 3, day1).await;
    appended.extend(fx.append(40, 4, day2).await);
    let config = fx.config();
    let relay = relay(&fx, &config);
    drain(&fx, &relay).await;
    assert_eq!(fx.outbox_count("sent").await, 100);

    let brokers = &config.kafka.brokers;
    let mut read = read_topic(brokers, &content_topic(&fx.prefix(), day1)).await;
    assert_eq!(read.len(), 60);
    assert!(
        read.iter()
            .all(|(_, _, e, _)| e.occurred_at.date_naive() == day1.date_naive())
    );
    let second = read_topic(brokers, &content_topic(&fx.prefix(), day2)).await;
    assert_eq!(second.len(), 40);
    read.extend(second);

    let ids: HashSet<_> = read.iter().map(|(_, _, e, _)| e.event_id).collect();
    assert_eq!(ids.len(), 100, "every event exactly once");
    assert_eq!(ids, appended.iter().map(|e| e.event_id).collect());
    assert!(
        read.iter().all(|(_, _, _, tp)| tp.is_some()),
        "traceparent header on every record"
    );

    // Per aggregate, Kafka order (one partition per key) equals append order.
    // (post, day) → (partition, offset, seq) of its records
    type Records = Vec<(i32, i64, u64)>;
    let mut by_post: HashMap<(i64, chrono::NaiveDate), Records> = HashMap::new();
    for (partition, offset, event, _) in &read {
        by_post
            .entry((event.subject_id, event.occurred_at.date_naive()))
            .or_default()
            .push((*partition, *offset, event.payload["seq"].as_u64().unwrap()));
    }
    for records in by_post.values_mut() {
        let partitions: HashSet<i32> = records.iter().map(|r| r.0).collect();
        assert_eq!(partitions.len(), 1, "one aggregate, one partition");
        records.sort_by_key(|r| r.1);
        let seqs: Vec<u64> = records.iter().map(|r| r.2).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "published in append order");
    }
}

#[tokio::test]
async fn several_relays_at_once_publish_each_row_once_in_order() {
    let fx = fixture(&[]).await;
    let at = Utc::now();
    fx.append(600, 20, at).await;
    let config = fx.config();
    let relays: Vec<_> = (0..3).map(|_| relay(&fx, &config)).collect();
    let shutdown = CancellationToken::new();
    let tasks: Vec<_> = relays
        .into_iter()
        .map(|r| tokio::spawn(r.run(shutdown.clone())))
        .collect();
    fx.eventually(Duration::from_secs(60), "all rows sent", || async {
        fx.outbox_count("sent").await == 600
    })
    .await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    let read = read_topic(&config.kafka.brokers, &content_topic(&fx.prefix(), at)).await;
    assert_eq!(read.len(), 600, "no double publish");
    let mut last: HashMap<i64, (i64, u64)> = HashMap::new();
    let mut sorted = read.clone();
    sorted.sort_by_key(|r| (r.0, r.1));
    for (_, offset, event, _) in sorted {
        let seq = event.payload["seq"].as_u64().unwrap();
        if let Some((_, prev)) = last.insert(event.subject_id, (offset, seq)) {
            assert!(seq > prev, "post {} out of order", event.subject_id);
        }
    }
}

/// The production producer settings for a crash-safe broker: acks=all with idempotence, and
/// a delivery timeout long enough for librdkafka to retry the same sequence numbers across a
/// restart.
const DURABLE: [(&str, &str); 4] = [
    ("KAFKA_ACKS", "all"),
    ("KAFKA_ENABLE_IDEMPOTENCE", "true"),
    ("KAFKA_MESSAGE_TIMEOUT_MS", "30000"),
    ("OUTBOX_MAX_ATTEMPTS", "1000"),
];

#[tokio::test]
async fn a_thousand_events_written_while_the_broker_is_down_or_restarting_arrive_exactly_once() {
    let mut broker = TansuBroker::down(Engine::Sqlite).await;
    let fx = fixture(&[
        ("KAFKA_ACKS", "all"),
        ("KAFKA_MESSAGE_TIMEOUT_MS", "30000"),
        ("OUTBOX_MAX_ATTEMPTS", "1000"),
    ])
    .await;
    let config = fx.config_with(&broker.brokers());
    let at = Utc::now();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay(&fx, &config).run(shutdown.clone()));

    // Written while the broker is down: they wait.
    let mut appended: HashSet<_> = fx
        .append(500, 50, at)
        .await
        .iter()
        .map(|e| e.event_id)
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fx.outbox_count("sent").await, 0, "nothing can be sent yet");
    broker.restart().await;
    fx.eventually(Duration::from_secs(60), "the first 500 sent", || async {
        fx.outbox_count("sent").await == 500
    })
    .await;
    // A rolling restart while the next 500 are being written and published.
    let (written, ()) = tokio::join!(fx.append(500, 50, at), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        broker.stop().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.restart().await;
    });
    appended.extend(written.iter().map(|e| e.event_id));
    fx.eventually(Duration::from_secs(120), "all 1000 rows sent", || async {
        fx.outbox_count("sent").await == 1000
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();

    let read = read_topic(&broker.brokers(), &content_topic(&fx.prefix(), at)).await;
    let ids: Vec<_> = read.iter().map(|(_, _, e, _)| e.event_id).collect();
    let unique: HashSet<_> = ids.iter().copied().collect();
    assert_eq!(unique, appended, "every event arrived");
    assert_eq!(ids.len(), 1000, "and none twice");
}

#[tokio::test]
async fn a_broker_crash_mid_write_loses_nothing_and_duplicates_only_in_flight_records() {
    let mut broker = TansuBroker::start(Engine::Sqlite).await;
    let fx = fixture(&DURABLE).await;
    let config = fx.config_with(&broker.brokers());
    let at = Utc::now();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay(&fx, &config).run(shutdown.clone()));
    let (written, ()) = tokio::join!(fx.append(1000, 50, at), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.kill().await; // SIGKILL: acknowledgements in flight are lost
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.restart().await;
    });
    fx.eventually(Duration::from_secs(120), "all 1000 rows sent", || async {
        fx.outbox_count("sent").await == 1000
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let read = read_topic(&broker.brokers(), &content_topic(&fx.prefix(), at)).await;
    let unique: HashSet<_> = read.iter().map(|(_, _, e, _)| e.event_id).collect();
    assert_eq!(
        unique,
        written.iter().map(|e| e.event_id).collect(),
        "nothing lost"
    );
    // A record the broker wrote but never acknowledged is sent again; only records in
    // flight at the crash can repeat (at most one batch). Consumers dedup them.
    let duplicates = read.len() - unique.len();
    assert!(duplicates <= 500, "{duplicates} duplicates");
}

#[tokio::test]
async fn failing_rows_die_after_max_attempts_block_their_aggregate_and_can_be_redriven() {
    let fx = fixture(&[
        ("KAFKA_MESSAGE_TIMEOUT_MS", "300"),
        ("OUTBOX_MAX_ATTEMPTS", "2"),
        ("OUTBOX_BACKOFF_BASE_MS", "10"),
        ("OUTBOX_BACKOFF_MAX_MS", "20"),
    ])
    .await;
    let nowhere = format!("127.0.0.1:{}", test_harness::closed_port());
    let dead_config = fx.config_with(&nowhere);
    let at = Utc::now();
    fx.append(3, 1, at).await;
    let broken = relay(&fx, &dead_config);
    fx.eventually(Duration::from_secs(60), "rows dead", || async {
        let _ = broken.publish_once().await;
        fx.outbox_count("dead").await >= 1
    })
    .await;
    let errors = fx
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT last_error FROM event_outbox WHERE status = 'dead' ORDER BY id LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    let error: String = errors.try_get("", "last_error").unwrap();
    assert!(!error.is_empty());

    // A live relay must not publish anything of that aggregate past its dead head.
    let config = fx.config();
    let live = relay(&fx, &config);
    fx.append(1, 1, at).await;
    live.publish_once().await.unwrap();
    assert_eq!(
        fx.outbox_count("sent").await,
        0,
        "later rows wait behind the dead one"
    );

    let redriven = live.handle().redrive().await.unwrap();
    assert!(redriven >= 1);
    drain(&fx, &live).await;
    assert_eq!(fx.outbox_count("sent").await, 4);
    let read = read_topic(&config.kafka.brokers, &content_topic(&fx.prefix(), at)).await;
    let seqs: Vec<u64> = {
        let mut r = read.clone();
        r.sort_by_key(|x| x.1);
        r.iter()
            .map(|x| x.2.payload["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs, vec![0, 1, 2, 0], "re-driven rows keep their order");
    let stats = live.handle().stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead), (0, 0));
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_event() {
    let fx = fixture(&[]).await;
    let txn = sea_orm::TransactionTrait::begin(&fx.db).await.unwrap();
    let event = contracts::EventEnvelope::new(
        contracts::EventType::PostCreate,
        1,
        1,
        serde_json::json!({}),
    );
    events::append(&txn, &event, "post:1").await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(fx.outbox_count("pending").await, 0);
}

#[tokio::test]
async fn sent_rows_are_pruned_after_the_retention() {
    let fx = fixture(&[]).await;
    fx.append(5, 1, Utc::now()).await;
    let config = fx.config();
    drain(&fx, &relay(&fx, &config)).await;
    fx.db
        .execute_unprepared("UPDATE event_outbox SET sent_at = now() - interval '2 days'")
        .await
        .unwrap();
    let pruned = events::outbox::prune_sent(&fx.db, Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(pruned, 5);
}
