//! Shared fixtures for the backbone tests: a fresh database with the outbox, the test
//! broker and Redis with unique prefixes, event writers, topic readers and a handler whose
//! effects are countable (deliberately NOT idempotent, so duplicates would show).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use contracts::{EventEnvelope, EventType, TopicName};
use events::{EventHandler, EventsConfig, HandlerError, RecordInfo};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use service_runtime::ServiceName;
use service_runtime::postgres::{PostgresSettings, connect_lazy};
use service_runtime::redis::{RedisSettings, pool};
use test_harness::TestEnv;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(events::outbox::CreateOutbox)]
    }
}

pub struct Fixture {
    pub env: TestEnv,
    pub db: DatabaseConnection,
    pub redis: deadpool_redis::Pool,
    pub redis_prefix: String,
    /// Makes every appended event's instant unique within the fixture.
    pub seq: std::sync::atomic::AtomicI64,
}

/// Logs (at `TEST_LOG_LEVEL`, default warn) and real trace contexts, as in a service.
pub fn init_telemetry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let guard = telemetry::init(&telemetry::TelemetryConfig {
            service_name: "events-test".into(),
            log_filter: std::env::var("TEST_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
            trace_filter: "info".into(),
            log_format: telemetry::LogFormat::Pretty,
            otlp_endpoint: None,
        })
        .unwrap();
        std::mem::forget(guard);
    });
}

/// Fast settings for tests; `overrides` win.
pub async fn fixture(overrides: &[(&str, &str)]) -> Fixture {
    init_telemetry();
    let mut env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("KAFKA_METADATA_REFRESH_MS", "500")
        .set("KAFKA_AUTO_COMMIT_INTERVAL_MS", "200")
        .set("KAFKA_STATISTICS_INTERVAL_MS", "1000")
        .set("KAFKA_SESSION_TIMEOUT_MS", "6000")
        .set("KAFKA_TOPIC_PARTITIONS", "2")
        .set("KAFKA_MESSAGE_TIMEOUT_MS", "3000")
        .set("OUTBOX_POLL_INTERVAL_MS", "50")
        .set("OUTBOX_BACKOFF_BASE_MS", "100")
        .set("OUTBOX_BACKOFF_MAX_MS", "1000")
        .set("CONSUMER_BACKOFF_BASE_MS", "50")
        .set("CONSUMER_BACKOFF_MAX_MS", "500")
        .set("CONSUMER_DEDUP_LEASE_SECONDS", "2");
    for (k, v) in overrides {
        env = env.set(k, *v);
    }
    if let Ok(debug) = std::env::var("KAFKA_DEBUG") {
        env = env.set("KAFKA_DEBUG", debug);
    }
    let db = connect_lazy(&PostgresSettings::from_env(env.vars(), ServiceName::Content).unwrap())
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    db.execute_unprepared(
        "CREATE TABLE effects (id BIGSERIAL PRIMARY KEY, event_id UUID NOT NULL, topic TEXT NOT NULL)",
    )
    .await
    .unwrap();
    let redis_settings = RedisSettings::from_env(env.vars()).unwrap();
    Fixture {
        redis: pool(&redis_settings).unwrap(),
        redis_prefix: redis_settings.key_prefix,
        env,
        db,
        seq: Default::default(),
    }
}

/// A fixture on an existing environment (the crash child reuses its parent's database,
/// prefixes and broker).
pub async fn fixture_from(vars: Vec<(String, String)>) -> Fixture {
    init_telemetry();
    let mut env = TestEnv::new();
    for (k, v) in vars {
        env = env.set(&k, v);
    }
    let db = connect_lazy(&PostgresSettings::from_env(env.vars(), ServiceName::Content).unwrap())
        .unwrap();
    let redis_settings = RedisSettings::from_env(env.vars()).unwrap();
    Fixture {
        redis: pool(&redis_settings).unwrap(),
        redis_prefix: redis_settings.key_prefix,
        env,
        db,
        seq: Default::default(),
    }
}

impl Fixture {
    pub fn config(&self) -> EventsConfig {
        EventsConfig::from_env(self.env.vars(), ServiceName::Content).unwrap()
    }

    pub fn config_with(&self, brokers: &str) -> EventsConfig {
        let env = self.env.clone().set("KAFKA_BROKERS", brokers);
        EventsConfig::from_env(env.vars(), ServiceName::Content).unwrap()
    }

    pub fn prefix(&self) -> String {
        self.env.get("KAFKA_TOPIC_PREFIX").unwrap().to_owned()
    }

    /// `n` events for `aggregates` posts, round-robin, occurring at `at`, each appended in
    /// its own transaction as a service would. Returns them in append order.
    pub async fn append(&self, n: usize, aggregates: i64, at: DateTime<Utc>) -> Vec<EventEnvelope> {
        let mut appended = Vec::with_capacity(n);
        for i in 0..n {
            let post = (i as i64 % aggregates) + 1;
            let mut event = EventEnvelope::new(
                EventType::PostUpdate,
                7,
                post,
                serde_json::json!({ "seq": i }),
            );
            // Distinct instants (as real events have), all on the day of `at`.
            let unique = self.seq.fetch_add(1, Ordering::SeqCst);
            event.occurred_at = at + chrono::Duration::nanoseconds(unique);
            let txn = self.db.begin().await.unwrap();
            events::append(&txn, &event, &format!("post:{post}"))
                .await
                .unwrap();
            txn.commit().await.unwrap();
            appended.push(event);
        }
        appended
    }

    pub async fn effects(&self) -> HashMap<uuid::Uuid, i64> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT event_id, count(*) AS n FROM effects GROUP BY event_id",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get("", "event_id").unwrap(),
                    r.try_get("", "n").unwrap(),
                )
            })
            .collect()
    }

    pub async fn outbox_count(&self, status: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM event_outbox WHERE status = $1",
                [status.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    /// Waits until `condition` holds, polling; panics with `what` after `within`.
    pub async fn eventually<F, Fut>(&self, within: Duration, what: &str, condition: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        while !condition().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Records an effect row per handled event (not idempotent on purpose). Can be told to
/// reject events of a type permanently, to fail the first few attempts, or to report its
/// store as unavailable.
pub struct RecordingHandler {
    pub db: DatabaseConnection,
    pub reject: std::sync::Mutex<Option<EventType>>,
    pub unavailable: AtomicBool,
    pub fail_first: std::sync::Mutex<HashMap<uuid::Uuid, u32>>,
    pub always_fail: std::sync::Mutex<Option<uuid::Uuid>>,
    pub trace_ids: std::sync::Mutex<Vec<String>>,
}

impl RecordingHandler {
    pub fn new(db: DatabaseConnection) -> Arc<Self> {
        Arc::new(Self {
            db,
            reject: Default::default(),
            unavailable: AtomicBool::new(false),
            fail_first: Default::default(),
            always_fail: Default::default(),
            trace_ids: Default::default(),
        })
    }
}

#[async_trait]
impl EventHandler for RecordingHandler {
    async fn handle(&self, event: &EventEnvelope, record: &RecordInfo) -> Result<(), HandlerError> {
        if let Some(trace_id) = telemetry::current_trace_id() {
            self.trace_ids.lock().unwrap().push(trace_id);
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(HandlerError::Unavailable(anyhow::anyhow!("store is down")));
        }
        if *self.reject.lock().unwrap() == Some(event.event_type) {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "cannot use {}",
                event.event_type
            )));
        }
        if *self.always_fail.lock().unwrap() == Some(event.event_id) {
            return Err(HandlerError::Retryable(anyhow::anyhow!("always fails")));
        }
        if let Some(left) = self.fail_first.lock().unwrap().get_mut(&event.event_id)
            && *left > 0
        {
            *left -= 1;
            return Err(HandlerError::Retryable(anyhow::anyhow!("flaky")));
        }
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO effects (event_id, topic) VALUES ($1, $2)",
                [event.event_id.into(), record.topic.clone().into()],
            ))
            .await
            .map_err(|e| HandlerError::Unavailable(e.into()))?;
        Ok(())
    }
}

/// Every record of `topic` from the beginning, as (partition, offset, event, traceparent);
/// records that are not events are left out.
pub async fn read_topic(
    brokers: &str,
    topic: &str,
) -> Vec<(i32, i64, EventEnvelope, Option<String>)> {
    test_harness::kafka::read_topic(brokers, topic)
        .await
        .into_iter()
        .filter_map(|r| {
            let event = serde_json::from_slice::<EventEnvelope>(&r.payload).ok()?;
            Some((
                r.partition,
                r.offset,
                event,
                r.headers.get("traceparent").cloned(),
            ))
        })
        .collect()
}

pub fn content_topic(prefix: &str, day: DateTime<Utc>) -> String {
    TopicName::CONTENT_EVENTS.prefixed(prefix) + "-" + &day.format("%Y%m%d").to_string()
}

/// Runs the relay until the outbox has no pending rows.
pub async fn drain(fx: &Fixture, relay: &events::OutboxRelay) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while fx.outbox_count("pending").await > 0 {
        assert!(Instant::now() < deadline, "outbox did not drain");
        relay.publish_once().await.unwrap();
    }
}

pub fn relay(fx: &Fixture, config: &EventsConfig) -> events::OutboxRelay {
    events::OutboxRelay::new(
        fx.db.clone(),
        &config.kafka,
        &config.producer,
        config.topics.clone(),
        config.relay.clone(),
        vec![TopicName::CONTENT_EVENTS],
    )
    .unwrap()
}
