//! End-to-end benchmark of the backbone on real servers (the test command's, or any given
//! by TEST_DATABASE_URL / TEST_REDIS_URL / TEST_KAFKA_BROKERS):
//!
//! 1. Steady load: writers append events at BENCH_RATE/s (default 1000), one transaction per
//!    event as a request would, for BENCH_SECONDS (default 60), while a relay publishes and
//!    a consumer runner (with Redis dedup) handles them. Reports throughput and end-to-end
//!    latency (event time → handler) percentiles.
//! 2. Relay ceiling: BENCH_BACKLOG (default 50000) rows already in the outbox; one relay
//!    drains them. Reports rows/s.
//!
//! `cargo bench -p events --bench pipeline` (numbers go in docs/benchmarks.md).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use contracts::{EventEnvelope, EventType, TopicName};
use events::{ConsumerRunner, EventHandler, EventsConfig, HandlerError, OutboxRelay, RecordInfo};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use service_runtime::ServiceName;
use service_runtime::postgres::{PostgresSettings, connect_lazy};
use service_runtime::redis::{RedisSettings, pool};
use test_harness::TestEnv;
use tokio_util::sync::CancellationToken;

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(events::outbox::CreateOutbox)]
    }
}

struct LatencyHandler {
    latencies_us: std::sync::Mutex<Vec<u64>>,
    handled: AtomicU64,
}

#[async_trait]
impl EventHandler for LatencyHandler {
    async fn handle(&self, event: &EventEnvelope, _: &RecordInfo) -> Result<(), HandlerError> {
        let latency = (Utc::now() - event.occurred_at)
            .num_microseconds()
            .unwrap_or(0);
        self.latencies_us
            .lock()
            .unwrap()
            .push(latency.max(0) as u64);
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn setup() -> (TestEnv, DatabaseConnection, EventsConfig) {
    let env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("KAFKA_METADATA_REFRESH_MS", "1000")
        .set("KAFKA_STATISTICS_INTERVAL_MS", "0")
        .set("OUTBOX_POLL_INTERVAL_MS", "100");
    let db = connect_lazy(&PostgresSettings::from_env(env.vars(), ServiceName::Content).unwrap())
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    let config = EventsConfig::from_env(env.vars(), ServiceName::Content).unwrap();
    (env, db, config)
}

fn relay(db: &DatabaseConnection, config: &EventsConfig) -> OutboxRelay {
    OutboxRelay::new(
        db.clone(),
        &config.kafka,
        &config.producer,
        config.topics.clone(),
        config.relay.clone(),
        vec![TopicName::CONTENT_EVENTS],
    )
    .unwrap()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn event(i: u64) -> EventEnvelope {
    EventEnvelope::new(
        EventType::PostCreate,
        (i % 1000) as i64 + 1,
        i as i64 + 1,
        serde_json::json!({ "title": "benchmark post", "body": "x".repeat(200) }),
    )
}

async fn steady_load() {
    let rate = var("BENCH_RATE", 1000);
    let seconds = var("BENCH_SECONDS", 60);
    let writers = var("BENCH_WRITERS", 8);
    let (env, db, config) = setup().await;
    let redis_settings = RedisSettings::from_env(env.vars()).unwrap();
    let handler = Arc::new(LatencyHandler {
        latencies_us: Default::default(),
        handled: AtomicU64::new(0),
    });
    let shutdown = CancellationToken::new();
    let consumer = ConsumerRunner::new(
        &config,
        "bench",
        &[TopicName::CONTENT_EVENTS],
        pool(&redis_settings).unwrap(),
        &redis_settings.key_prefix,
        handler.clone(),
    )
    .unwrap();
    // Create today's topic and let the consumer join before the clock starts.
    let relay = relay(&db, &config);
    relay
        .topics()
        .create_ahead(&[TopicName::CONTENT_EVENTS])
        .await
        .unwrap();
    let consumer_task = tokio::spawn(consumer.run(shutdown.clone()));
    let relay_task = tokio::spawn(relay.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;

    let total = rate * seconds;
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let per_writer = Duration::from_secs_f64(writers as f64 / rate as f64);
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let db = db.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(per_writer);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                loop {
                    tick.tick().await;
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let e = event(i);
                    let txn = db.begin().await.unwrap();
                    events::append(&txn, &e, &format!("post:{}", e.subject_id))
                        .await
                        .unwrap();
                    txn.commit().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let write_elapsed = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while handler.handled.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total_elapsed = started.elapsed();
    shutdown.cancel();
    let _ = consumer_task.await;
    let _ = relay_task.await;

    let mut latencies = handler.latencies_us.lock().unwrap().clone();
    latencies.sort_unstable();
    let handled = handler.handled.load(Ordering::Relaxed);
    println!(
        "## steady load: {rate} events/s target for {seconds} s ({writers} writers, 1 txn per event)"
    );
    println!("| metric | value |\n|---|---|");
    println!(
        "| events written | {total} in {:.1} s ({:.0}/s) |",
        write_elapsed.as_secs_f64(),
        total as f64 / write_elapsed.as_secs_f64()
    );
    println!(
        "| events handled | {handled} ({:.0}/s end to end) |",
        handled as f64 / total_elapsed.as_secs_f64()
    );
    println!("| latency p50 | {:.1} ms |", percentile(&latencies, 0.50));
    println!("| latency p90 | {:.1} ms |", percentile(&latencies, 0.90));
    println!("| latency p99 | {:.1} ms |", percentile(&latencies, 0.99));
    println!("| latency max | {:.1} ms |", percentile(&latencies, 1.0));
}

async fn relay_ceiling() {
    let backlog = var("BENCH_BACKLOG", 50_000);
    let (_env, db, config) = setup().await;
    let mut i = 0;
    while i < backlog {
        let txn = db.begin().await.unwrap();
        for _ in 0..1000.min(backlog - i) {
            let e = event(i);
            events::append(&txn, &e, &format!("post:{}", e.subject_id))
                .await
                .unwrap();
            i += 1;
        }
        txn.commit().await.unwrap();
    }
    let relay = relay(&db, &config);
    relay
        .topics()
        .create_ahead(&[TopicName::CONTENT_EVENTS])
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let sent = relay.publish_once().await.unwrap();
        if sent == 0 {
            let pending = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT count(*) AS n FROM event_outbox WHERE status = 'pending'",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap();
            if pending == 0 {
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    println!("## relay ceiling: {backlog} rows already in the outbox, one relay");
    println!("| metric | value |\n|---|---|");
    println!("| drained in | {:.2} s |", elapsed.as_secs_f64());
    println!(
        "| throughput | {:.0} rows/s |",
        backlog as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one part.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if wants("steady") {
        steady_load().await;
    }
    if wants("ceiling") {
        relay_ceiling().await;
    }
}
