//! The consumer runner services plug a handler into.
//!
//! - Subscribes by regex to `^{prefix}{name}-[0-9]{8}$` for each topic name, so a new day's
//!   topic is picked up without a restart (after at most `KAFKA_METADATA_REFRESH_MS`), and
//!   reads new topics from their beginning.
//! - At least once: an offset is stored only after the handler's effect is durable (or the
//!   message is dead-lettered); stored offsets are committed every
//!   `KAFKA_AUTO_COMMIT_INTERVAL_MS`, on rebalance and on shutdown.
//! - Dedup in Redis with the seed's keys ([`dedup`]); handlers must also upsert.
//! - Failures never block other partitions: a failing message's partition is paused and
//!   rewound to it, and resumed after a backoff. [`HandlerError::Retryable`] is retried up
//!   to `CONSUMER_MAX_ATTEMPTS` then dead-lettered; [`HandlerError::Permanent`] and poison
//!   (bad JSON, unknown event type) are dead-lettered at once;
//!   [`HandlerError::Unavailable`] (the handler's store is down) is retried for as long as
//!   it takes, never dead-lettered — the partition waits, nothing is lost.
//! - Checkpointed handlers ([`ConsumerRunner::checkpointed`]: an embedded index whose writes
//!   become durable only at its commit) get their offsets stored only after
//!   [`EventHandler::checkpoint`] succeeds, so a crash replays what was not yet durable.
//!   Such handlers must be idempotent by key and version; Redis dedup is off for them (a
//!   dedup key completed before the checkpoint would turn that replay into a loss).

pub mod dead_letter;
pub mod dedup;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contracts::{EventEnvelope, TopicName};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::dead_letter::{DeadLetters, RedriveReport};
use self::dedup::{Claim, Dedup};
use crate::EventsConfig;
use crate::settings::{ConsumerSettings, backoff};
use crate::topics::TopicAdmin;

/// Where a record was read from (for handlers that log or store it).
#[derive(Debug, Clone)]
pub struct RecordInfo {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Why a handler did not handle an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work next time (a conflict, a timeout): retried, then dead-lettered.
    #[error("{0:#}")]
    Retryable(anyhow::Error),
    /// Will never work (payload the handler cannot use): dead-lettered at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// The handler's own store is down: retried until it is back, never dead-lettered.
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
}

/// What a service does with each event. Must be idempotent (upsert): dedup makes
/// redeliveries rare, not impossible.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &EventEnvelope, record: &RecordInfo) -> Result<(), HandlerError>;

    /// Makes everything handled so far durable. Only runners built
    /// [`checkpointed`](ConsumerRunner::checkpointed) call it, and store offsets after it.
    async fn checkpoint(&self) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// When a checkpointed runner asks its handler to make its work durable: after this many
/// handled events or this long after the first one not yet durable, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    pub max_events: usize,
    pub max_interval: Duration,
}

/// Handled offsets waiting for the handler's next checkpoint.
#[derive(Default)]
struct Pending {
    /// Highest handled offset per partition.
    offsets: HashMap<Partition, i64>,
    events: usize,
    since: Option<Instant>,
}

/// Rebalance and statistics hooks.
struct RunnerContext {
    group: String,
    revoked: Mutex<Vec<(String, i32)>>,
}

impl ClientContext for RunnerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!(
                        "kafka_consumer_lag",
                        "group" => self.group.clone(),
                        "topic" => topic.clone(),
                        "partition" => partition.to_string(),
                    )
                    .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for RunnerContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && let Ok(mut revoked) = self.revoked.lock()
        {
            revoked.extend(
                partitions
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition())),
            );
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(err) = result {
            tracing::debug!(error = %err, "offset commit did not complete");
        }
    }
}

type Partition = (String, i32);
type Position = (String, i32, i64);

enum Step {
    /// Handled, duplicate or dead-lettered: store the offset.
    Done,
    /// Rewind to this message and try again after the delay.
    RetryAfter(Duration),
}

/// Re-drives a group's dead letters through its handler (for an admin endpoint or job).
#[derive(Clone)]
pub struct Redriver {
    dead_letters: Arc<DeadLetters>,
    handler: Arc<dyn EventHandler>,
    dedup: Dedup,
}

impl Redriver {
    pub async fn redrive(&self) -> anyhow::Result<RedriveReport> {
        self.dead_letters
            .redrive(self.handler.as_ref(), &self.dedup)
            .await
    }

    pub fn topic(&self) -> &str {
        self.dead_letters.topic()
    }
}

/// Consumes a group's topics into a handler until shut down.
pub struct ConsumerRunner {
    consumer: StreamConsumer<RunnerContext>,
    handler: Arc<dyn EventHandler>,
    dedup: Dedup,
    dead_letters: Arc<DeadLetters>,
    settings: ConsumerSettings,
    group: String,
    patterns: Vec<String>,
    checkpoint: Option<CheckpointPolicy>,
}

impl ConsumerRunner {
    /// `group` (prefixed with `KAFKA_TOPIC_PREFIX`) consumes every dated topic of `names`.
    /// `redis` and `redis_prefix` hold the dedup keys.
    pub fn new(
        config: &EventsConfig,
        group: &str,
        names: &[TopicName],
        redis: deadpool_redis::Pool,
        redis_prefix: &str,
        handler: Arc<dyn EventHandler>,
    ) -> anyhow::Result<Self> {
        let kafka = &config.kafka;
        let settings = config.consumer.clone();
        let group = format!("{}{group}", kafka.topic_prefix);
        let context = RunnerContext {
            group: group.clone(),
            revoked: Mutex::new(Vec::new()),
        };
        let consumer: StreamConsumer<RunnerContext> = kafka
            .client_config()
            .set("group.id", &group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                settings.commit_interval.as_millis().max(1).to_string(),
            )
            .set("auto.offset.reset", "earliest")
            .set(
                "topic.metadata.refresh.interval.ms",
                settings.metadata_refresh.as_millis().max(100).to_string(),
            )
            .set(
                "fetch.wait.max.ms",
                settings.fetch_wait_max.as_millis().max(1).to_string(),
            )
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().max(1).to_string(),
            )
            .set(
                "statistics.interval.ms",
                settings.statistics_interval.as_millis().to_string(),
            )
            .create_with_context(context)?;
        let mut producer_config = kafka.client_config();
        config.producer.apply(&mut producer_config);
        let topics = Arc::new(TopicAdmin::new(kafka, config.topics.clone())?);
        let dead_letters = Arc::new(DeadLetters::new(
            producer_config.create()?,
            topics,
            kafka.clone(),
            &group,
        ));
        let dedup = Dedup::new(
            redis,
            redis_prefix,
            &group,
            settings.dedup_ttl,
            settings.dedup_lease,
        );
        let patterns = names
            .iter()
            .map(|n| contracts::topics::subscription_pattern(&n.prefixed(&kafka.topic_prefix)))
            .collect();
        Ok(Self {
            consumer,
            handler,
            dedup,
            dead_letters,
            settings,
            group,
            patterns,
            checkpoint: None,
        })
    }

    /// Offsets are stored only after the handler's [`EventHandler::checkpoint`], called per
    /// `policy` and on shutdown; Redis dedup is off (see the module docs).
    pub fn checkpointed(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoint = Some(policy);
        self
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// A handle that re-drives this group's dead letters.
    pub fn redriver(&self) -> Redriver {
        Redriver {
            dead_letters: Arc::clone(&self.dead_letters),
            handler: Arc::clone(&self.handler),
            dedup: self.dedup.clone(),
        }
    }

    /// Consumes until `shutdown`, then commits stored offsets and leaves the group.
    pub async fn run(self, shutdown: CancellationToken) {
        let patterns: Vec<&str> = self.patterns.iter().map(String::as_str).collect();
        if let Err(err) = self.consumer.subscribe(&patterns) {
            tracing::error!(error = %err, group = %self.group, "cannot subscribe");
            return;
        }
        tracing::info!(group = %self.group, patterns = ?patterns, "consumer started");
        let mut paused: HashMap<Partition, Instant> = HashMap::new();
        let mut attempts: HashMap<Position, u32> = HashMap::new();
        let mut pending = Pending::default();
        loop {
            self.forget_revoked(&mut paused, &mut attempts);
            let next_resume = paused.values().min().copied();
            let checkpoint_due = self.checkpoint_due(&pending);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(checkpoint_due), if checkpoint_due.is_some() => {
                    self.checkpoint(&mut pending).await;
                }
                _ = sleep_until(next_resume), if next_resume.is_some() => {
                    self.resume_due(&mut paused);
                }
                received = self.consumer.recv() => match received {
                    Err(err) => {
                        tracing::warn!(error = %err, group = %self.group, "consumer error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok(message) => {
                        let partition = (message.topic().to_owned(), message.partition());
                        if paused.contains_key(&partition) {
                            // Fetched before the pause took effect; it comes again on resume.
                            continue;
                        }
                        match self.process(&message, &mut attempts).await {
                            Step::Done if self.checkpoint.is_some() => {
                                pending.offsets.insert(partition, message.offset());
                                pending.events += 1;
                                pending.since.get_or_insert_with(Instant::now);
                            }
                            Step::Done => {
                                if let Err(err) = self.consumer.store_offset_from_message(&message) {
                                    tracing::debug!(error = %err, "offset not stored (partition revoked?)");
                                }
                            }
                            Step::RetryAfter(delay) => {
                                self.rewind(&message);
                                paused.insert(partition, Instant::now() + delay);
                            }
                        }
                    }
                }
            }
        }
        if !pending.offsets.is_empty() {
            self.checkpoint(&mut pending).await;
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!(group = %self.group, "offsets committed on shutdown"),
            Err(err) => tracing::debug!(error = %err, "nothing to commit on shutdown"),
        }
    }

    /// Redis dedup, unless the runner is checkpointed.
    fn dedup(&self) -> Option<&Dedup> {
        self.checkpoint.is_none().then_some(&self.dedup)
    }

    /// When the pending offsets must be made durable: now if enough events are waiting,
    /// else when the oldest has waited `max_interval`.
    fn checkpoint_due(&self, pending: &Pending) -> Option<Instant> {
        let policy = self.checkpoint?;
        let since = pending.since?;
        if pending.events >= policy.max_events {
            return Some(Instant::now());
        }
        Some(since + policy.max_interval)
    }

    /// Asks the handler to make its work durable, then stores and commits the offsets it
    /// covered. On failure everything stays pending and is tried again at the next interval.
    async fn checkpoint(&self, pending: &mut Pending) {
        let started = Instant::now();
        match self.handler.checkpoint().await {
            Ok(()) => {
                for ((topic, partition), offset) in pending.offsets.drain() {
                    if let Err(err) = self.consumer.store_offset(&topic, partition, offset) {
                        tracing::debug!(error = %err, "offset not stored (partition revoked?)");
                    }
                }
                pending.events = 0;
                pending.since = None;
                if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Async) {
                    tracing::debug!(error = %err, "offset commit not started");
                }
                metrics::histogram!("consumer_checkpoint_duration_seconds", "group" => self.group.clone())
                    .record(started.elapsed().as_secs_f64());
            }
            Err(err) => {
                tracing::warn!(error = %err, group = %self.group, "checkpoint failed; offsets stay pending");
                metrics::counter!("consumer_checkpoint_failures_total", "group" => self.group.clone())
                    .increment(1);
                pending.since = Some(Instant::now());
            }
        }
    }

    /// Pauses the message's partition and seeks it back to the message.
    fn rewind(&self, message: &BorrowedMessage<'_>) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(message.topic(), message.partition());
        if let Err(err) = self.consumer.pause(&tpl) {
            tracing::warn!(error = %err, "cannot pause partition");
        }
        if let Err(err) = self.consumer.seek(
            message.topic(),
            message.partition(),
            Offset::Offset(message.offset()),
            Duration::from_secs(5),
        ) {
            tracing::warn!(error = %err, "cannot seek partition back");
        }
    }

    fn resume_due(&self, paused: &mut HashMap<Partition, Instant>) {
        let now = Instant::now();
        let due: Vec<Partition> = paused
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for partition in due {
            paused.remove(&partition);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&partition.0, partition.1);
            if let Err(err) = self.consumer.resume(&tpl) {
                tracing::debug!(error = %err, "cannot resume partition (revoked?)");
            }
        }
    }

    fn forget_revoked(
        &self,
        paused: &mut HashMap<Partition, Instant>,
        attempts: &mut HashMap<Position, u32>,
    ) {
        let revoked: Vec<Partition> = match self.consumer.context().revoked.lock() {
            Ok(mut revoked) => std::mem::take(&mut *revoked),
            Err(_) => return,
        };
        for partition in revoked {
            paused.remove(&partition);
            attempts.retain(|(t, p, _), _| !(t == &partition.0 && *p == partition.1));
        }
    }

    async fn process(
        &self,
        message: &BorrowedMessage<'_>,
        attempts: &mut HashMap<Position, u32>,
    ) -> Step {
        let position = (
            message.topic().to_owned(),
            message.partition(),
            message.offset(),
        );
        let attempt = attempts.get(&position).copied().unwrap_or(0) + 1;
        let parsed = match message.payload() {
            Some(bytes) => serde_json::from_slice::<EventEnvelope>(bytes)
                .map_err(|e| format!("poison message: {e}")),
            None => Err("poison message: empty payload".to_owned()),
        };
        let event = match parsed {
            Ok(event) => event,
            Err(error) => return self.dead_letter(message, &error, attempt, attempts).await,
        };

        let span = tracing::info_span!(
            "consume",
            otel.name = %format!("consume {}", message.topic()),
            otel.kind = "consumer",
            messaging.consumer.group.name = %self.group,
            event.id = %event.event_id,
            event.r#type = %event.event_type,
        );
        if let Some(traceparent) = header(message, contracts::headers::TRACEPARENT) {
            let tracestate = header(message, contracts::headers::TRACESTATE);
            telemetry::set_parent_from(&span, traceparent, tracestate);
        } else if let Some(trace) = &event.trace {
            telemetry::set_parent_from(&span, &trace.traceparent, trace.tracestate.as_deref());
        }
        let event_type = event.event_type.as_str();

        let key = self.dedup.key(&event);
        let claim = match self.dedup() {
            Some(dedup) => dedup.claim(&key).await,
            None => Claim::Unavailable,
        };
        match claim {
            Claim::Duplicate => {
                metrics::counter!("consumer_events_total", "group" => self.group.clone(),
                    "type" => event_type, "outcome" => "duplicate")
                .increment(1);
                attempts.remove(&position);
                return Step::Done;
            }
            Claim::InProgress => {
                return Step::RetryAfter(self.dedup.lease().min(self.retry_delay(attempt)));
            }
            Claim::Acquired | Claim::Unavailable => {}
        }

        let info = RecordInfo {
            topic: position.0.clone(),
            partition: position.1,
            offset: position.2,
        };
        let started = Instant::now();
        let result = self.handler.handle(&event, &info).instrument(span).await;
        metrics::histogram!("consumer_handle_duration_seconds", "group" => self.group.clone())
            .record(started.elapsed().as_secs_f64());
        let err = match result {
            Ok(()) => {
                if let Some(dedup) = self.dedup() {
                    dedup.complete(&key).await;
                }
                attempts.remove(&position);
                metrics::counter!("consumer_events_total", "group" => self.group.clone(),
                    "type" => event_type, "outcome" => "handled")
                .increment(1);
                return Step::Done;
            }
            Err(err) => err,
        };
        if let Some(dedup) = self.dedup() {
            dedup.release(&key).await;
        }
        match err {
            HandlerError::Permanent(e) => {
                self.dead_letter(message, &format!("permanent: {e:#}"), attempt, attempts)
                    .await
            }
            HandlerError::Retryable(e) if attempt >= self.settings.max_attempts => {
                self.dead_letter(
                    message,
                    &format!("gave up after {attempt} attempts: {e:#}"),
                    attempt,
                    attempts,
                )
                .await
            }
            HandlerError::Retryable(e) => {
                tracing::warn!(error = %e, attempt, "handler failed; will retry");
                self.count_retry(event_type);
                attempts.insert(position, attempt);
                Step::RetryAfter(self.retry_delay(attempt))
            }
            HandlerError::Unavailable(e) => {
                tracing::warn!(error = %e, attempt, "handler's store unavailable; pausing partition");
                self.count_retry(event_type);
                attempts.insert(position, attempt);
                Step::RetryAfter(self.retry_delay(attempt))
            }
        }
    }

    fn count_retry(&self, event_type: &'static str) {
        metrics::counter!("consumer_events_total", "group" => self.group.clone(),
            "type" => event_type, "outcome" => "retried")
        .increment(1);
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        backoff(
            attempt,
            self.settings.backoff_base,
            self.settings.backoff_max,
        )
    }

    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        error: &str,
        attempt: u32,
        attempts: &mut HashMap<Position, u32>,
    ) -> Step {
        match self.dead_letters.send(message, error, attempt).await {
            Ok(()) => {
                tracing::error!(
                    error,
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    dead_letter_topic = self.dead_letters.topic(),
                    "message dead-lettered"
                );
                attempts.remove(&(
                    message.topic().to_owned(),
                    message.partition(),
                    message.offset(),
                ));
                metrics::counter!("consumer_events_total", "group" => self.group.clone(),
                    "type" => "unknown", "outcome" => "dead_lettered")
                .increment(1);
                Step::Done
            }
            Err(send_error) => {
                tracing::warn!(error = %send_error, "cannot dead-letter; will retry");
                Step::RetryAfter(self.retry_delay(attempt))
            }
        }
    }
}

fn header<'a>(message: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
