//! The relay: publishes outbox rows to their dated topics, in order per aggregate, and marks
//! them sent. Safe with a relay in every replica: a relay publishes from a shard only while
//! it holds that shard's transaction-scoped advisory lock, and claims rows with
//! `FOR UPDATE SKIP LOCKED`.
//!
//! Within a claimed batch, rows are sent in waves: the first unsent row of every aggregate,
//! then the second, … — aggregates in parallel, each aggregate strictly in order. An
//! aggregate whose row fails stops for this round; the claim query holds back every later
//! row of an aggregate while an earlier one is dead or backing off, so a retry can never
//! overtake.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use contracts::{TopicName, TraceContext};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use serde::Deserialize;
use service_runtime::kafka::KafkaSettings;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{NOTIFY_CHANNEL, OutboxStats};
use crate::EventsConfig;
use crate::settings::{ProducerSettings, RelaySettings, TopicSettings, backoff};
use crate::topics::TopicAdmin;

/// First key of the relay's advisory locks (the second is the shard): "df" in ASCII.
const LOCK_CLASS: i32 = 0x6466;

#[derive(Debug, FromQueryResult)]
struct OutboxRow {
    id: i64,
    topic: String,
    aggregate_key: String,
    occurred_at: DateTime<Utc>,
    envelope: String,
    attempts: i32,
}

/// The fields of an envelope the relay needs for headers.
#[derive(Deserialize)]
struct EnvelopeHead {
    event_id: String,
    event_type: String,
    #[serde(default)]
    trace: Option<TraceContext>,
}

/// Publishes the outbox. Build one per service and run it as a background task.
pub struct OutboxRelay {
    db: DatabaseConnection,
    producer: FutureProducer,
    topics: Arc<TopicAdmin>,
    settings: RelaySettings,
    names: Vec<TopicName>,
}

/// What an admin endpoint needs: re-drive and stats.
#[derive(Clone)]
pub struct RelayHandle {
    db: DatabaseConnection,
}

impl RelayHandle {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn redrive(&self) -> Result<u64, DbErr> {
        super::redrive(&self.db).await
    }

    pub async fn stats(&self) -> Result<OutboxStats, DbErr> {
        super::stats(&self.db).await
    }
}

impl OutboxRelay {
    /// `names`: the topics this service publishes (created ahead of time and retired).
    pub fn new(
        db: DatabaseConnection,
        kafka: &KafkaSettings,
        producer: &ProducerSettings,
        topics: TopicSettings,
        settings: RelaySettings,
        names: Vec<TopicName>,
    ) -> anyhow::Result<Self> {
        let mut config = kafka.client_config();
        producer.apply(&mut config);
        Ok(Self {
            producer: config.create()?,
            topics: Arc::new(TopicAdmin::new(kafka, topics)?),
            db,
            settings,
            names,
        })
    }

    /// [`new`](Self::new) with the pieces of the service's [`EventsConfig`].
    pub fn from_config(
        db: DatabaseConnection,
        config: &EventsConfig,
        names: Vec<TopicName>,
    ) -> anyhow::Result<Self> {
        Self::new(
            db,
            &config.kafka,
            &config.producer,
            config.topics.clone(),
            config.relay.clone(),
            names,
        )
    }

    pub fn handle(&self) -> RelayHandle {
        RelayHandle::new(self.db.clone())
    }

    pub fn topics(&self) -> Arc<TopicAdmin> {
        Arc::clone(&self.topics)
    }

    /// Publishes until `shutdown`, waking on NOTIFY or every poll interval, and runs the
    /// upkeep (topics ahead, retention, pruning, re-drive, backlog metrics) alongside.
    pub async fn run(self, shutdown: CancellationToken) {
        let relay = Arc::new(self);
        let upkeep = tokio::spawn(Arc::clone(&relay).upkeep(shutdown.clone()));
        relay.publish_loop(shutdown).await;
        let _ = upkeep.await;
        // Deliver anything librdkafka still holds before the process exits.
        let producer = relay.producer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            rdkafka::producer::Producer::flush(&producer, Duration::from_secs(5))
        })
        .await;
    }

    async fn publish_loop(&self, shutdown: CancellationToken) {
        let mut listener: Option<sqlx::postgres::PgListener> = None;
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            if listener.is_none() {
                listener = self.listen().await;
            }
            match self.publish_once().await {
                Ok(published) if published > 0 => {
                    failures = 0;
                    continue; // more may be waiting
                }
                Ok(_) => failures = 0,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(error = %err, "outbox relay round failed");
                }
            }
            // Back off while the database is unreachable; otherwise wait for a NOTIFY.
            let idle = if failures > 0 {
                backoff(
                    failures,
                    self.settings.poll_interval,
                    Duration::from_secs(10),
                )
            } else {
                self.settings.poll_interval
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(idle) => {}
                notified = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                } => {
                    if notified.is_err() {
                        listener = None;
                    }
                }
            }
        }
    }

    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let pool = self.db.get_postgres_connection_pool().clone();
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.ok()?;
        listener.listen(NOTIFY_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// One round: every shard with due rows. Returns how many rows were published.
    pub async fn publish_once(&self) -> Result<usize, DbErr> {
        let shards = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT DISTINCT shard FROM event_outbox
                  WHERE status = 'pending' AND next_attempt_at <= now()",
            ))
            .await?;
        let mut published = 0;
        for row in shards {
            let shard: i16 = row.try_get("", "shard")?;
            published += self.publish_shard(shard).await?;
        }
        Ok(published)
    }

    async fn publish_shard(&self, shard: i16) -> Result<usize, DbErr> {
        let txn = self.db.begin().await?;
        let locked = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1, $2) AS locked",
                [LOCK_CLASS.into(), i32::from(shard).into()],
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "locked"))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            txn.commit().await?;
            return Ok(0); // another relay owns this shard right now
        }
        let rows = OutboxRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"SELECT o.id, o.topic, o.aggregate_key, o.occurred_at, o.envelope, o.attempts
                 FROM event_outbox o
                WHERE o.shard = $1 AND o.status = 'pending' AND o.next_attempt_at <= now()
                  AND NOT EXISTS (
                      SELECT 1 FROM event_outbox b
                       WHERE b.aggregate_key = o.aggregate_key AND b.id < o.id
                         AND (b.status = 'dead'
                              OR (b.status = 'pending' AND b.next_attempt_at > now())))
                ORDER BY o.id
                LIMIT $2
                FOR UPDATE SKIP LOCKED"#,
            [shard.into(), self.settings.batch_size.into()],
        ))
        .all(&txn)
        .await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }

        let started = Instant::now();
        let outcomes = self.publish_rows(&rows).await;
        let mut sent = Vec::new();
        for (row, outcome) in rows.iter().zip(&outcomes) {
            match outcome {
                Some(Ok(())) => sent.push(row.id),
                Some(Err(error)) => self.record_failure(&txn, row, error).await?,
                None => {} // held back behind a failed earlier row of its aggregate
            }
        }
        if !sent.is_empty() {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE event_outbox
                    SET status = 'sent', sent_at = now(), attempts = attempts + 1,
                        last_error = NULL
                  WHERE id = ANY($1)",
                [sent.clone().into()],
            ))
            .await?;
        }
        txn.commit().await?;

        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, Some(Err(_))))
            .count();
        metrics::counter!("outbox_published_total").increment(sent.len() as u64);
        metrics::counter!("outbox_publish_failures_total").increment(failed as u64);
        metrics::histogram!("outbox_publish_batch_seconds").record(started.elapsed().as_secs_f64());
        Ok(sent.len())
    }

    async fn record_failure(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        row: &OutboxRow,
        error: &str,
    ) -> Result<(), DbErr> {
        let attempt = row.attempts + 1;
        let dead = attempt >= self.settings.max_attempts;
        let delay = backoff(
            attempt.unsigned_abs(),
            self.settings.backoff_base,
            self.settings.backoff_max,
        );
        let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        if dead {
            tracing::error!(outbox_id = row.id, attempt, error, "outbox row is dead");
            metrics::counter!("outbox_dead_total").increment(1);
        }
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE event_outbox
                SET attempts = $2, last_error = $3, next_attempt_at = $4,
                    status = CASE WHEN $5 THEN 'dead' ELSE 'pending' END
              WHERE id = $1",
            [
                row.id.into(),
                attempt.into(),
                error.chars().take(2000).collect::<String>().into(),
                next.into(),
                dead.into(),
            ],
        ))
        .await?;
        Ok(())
    }

    /// Publishes `rows` in waves; the outcome of each row, `None` if it was held back.
    async fn publish_rows(&self, rows: &[OutboxRow]) -> Vec<Option<Result<(), String>>> {
        let mut outcomes: Vec<Option<Result<(), String>>> = vec![None; rows.len()];
        let topics: Vec<String> = rows
            .iter()
            .map(|r| {
                self.topics
                    .topic(&r.topic, self.topics.zone().day_of(r.occurred_at))
            })
            .collect();
        let needed: BTreeSet<String> = topics.iter().cloned().collect();
        let needed: Vec<String> = needed.into_iter().collect();
        if let Err(err) = self.topics.ensure(&needed).await {
            let error = format!("topic creation failed: {err:#}");
            return rows.iter().map(|_| Some(Err(error.clone()))).collect();
        }

        // Queue of row indexes per aggregate, in id order.
        let mut queues: HashMap<&str, std::collections::VecDeque<usize>> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            queues.entry(&row.aggregate_key).or_default().push_back(i);
        }
        while !queues.is_empty() {
            let wave: Vec<usize> = queues.values_mut().filter_map(|q| q.pop_front()).collect();
            let sends = wave.iter().map(|&i| self.send(&topics[i], &rows[i]));
            let results = futures_util::future::join_all(sends).await;
            for (&i, result) in wave.iter().zip(results) {
                if result.is_err() {
                    // Stop this aggregate: its later rows must not overtake this one.
                    queues.remove(rows[i].aggregate_key.as_str());
                }
                outcomes[i] = Some(result);
            }
            queues.retain(|_, q| !q.is_empty());
        }
        outcomes
    }

    async fn send(&self, topic: &str, row: &OutboxRow) -> Result<(), String> {
        let head: Option<EnvelopeHead> = serde_json::from_str(&row.envelope).ok();
        let span = tracing::info_span!(
            "outbox_publish",
            otel.name = %format!("publish {topic}"),
            otel.kind = "producer",
            messaging.destination.name = %topic,
            outbox.id = row.id,
        );
        if let Some(trace) = head.as_ref().and_then(|h| h.trace.as_ref()) {
            telemetry::set_parent_from(&span, &trace.traceparent, trace.tracestate.as_deref());
        }
        async {
            let mut headers = OwnedHeaders::new();
            if let Some(head) = &head {
                headers = headers
                    .insert(Header {
                        key: "event_id",
                        value: Some(head.event_id.as_str()),
                    })
                    .insert(Header {
                        key: "event_type",
                        value: Some(head.event_type.as_str()),
                    });
            }
            // The consumer continues the trace from this publish span.
            if let Some(trace) = telemetry::current_trace_context() {
                headers = headers.insert(Header {
                    key: contracts::headers::TRACEPARENT,
                    value: Some(trace.traceparent.as_str()),
                });
                if let Some(state) = &trace.tracestate {
                    headers = headers.insert(Header {
                        key: contracts::headers::TRACESTATE,
                        value: Some(state.as_str()),
                    });
                }
            }
            let record = FutureRecord::to(topic)
                .key(&row.aggregate_key)
                .payload(&row.envelope)
                .headers(headers);
            self.producer
                .send(record, Duration::from_secs(5))
                .await
                .map(|_| ())
                .map_err(|(err, _)| err.to_string())
        }
        .instrument(span)
        .await
    }

    /// Topics ahead and retention, pruning, scheduled re-drive and backlog gauges.
    async fn upkeep(self: Arc<Self>, shutdown: CancellationToken) {
        let mut topics_tick = tokio::time::interval(self.topics.maintenance_interval());
        let mut prune_tick = tokio::time::interval(Duration::from_secs(600));
        let mut stats_tick = tokio::time::interval(Duration::from_secs(5));
        let mut redrive_tick = tokio::time::interval(
            self.settings
                .redrive_interval
                .unwrap_or(Duration::from_secs(86_400 * 365)),
        );
        redrive_tick.tick().await; // the first tick is immediate: skip it
        for tick in [
            &mut topics_tick,
            &mut prune_tick,
            &mut stats_tick,
            &mut redrive_tick,
        ] {
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = topics_tick.tick() => {
                    if let Err(err) = self.topics.create_ahead(&self.names).await {
                        tracing::warn!(error = %err, "cannot create topics ahead");
                    }
                    if let Err(err) = self.topics.delete_expired(&self.names).await {
                        tracing::warn!(error = %err, "cannot delete expired topics");
                    }
                }
                _ = prune_tick.tick() => {
                    match super::prune_sent(&self.db, self.settings.sent_retention).await {
                        Ok(n) if n > 0 => tracing::info!(rows = n, "pruned sent outbox rows"),
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = %err, "cannot prune the outbox"),
                    }
                }
                _ = stats_tick.tick() => {
                    if let Ok(stats) = super::stats(&self.db).await {
                        metrics::gauge!("outbox_backlog").set(stats.pending as f64);
                        metrics::gauge!("outbox_dead_rows").set(stats.dead as f64);
                        metrics::gauge!("outbox_oldest_unsent_age_seconds")
                            .set(stats.oldest_unsent_age_seconds);
                    }
                }
                _ = redrive_tick.tick(), if self.settings.redrive_interval.is_some() => {
                    match super::redrive(&self.db).await {
                        Ok(n) if n > 0 => tracing::info!(rows = n, "re-drove dead outbox rows"),
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = %err, "cannot re-drive the outbox"),
                    }
                }
            }
        }
    }
}
