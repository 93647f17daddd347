//! Dead letters of a consumer group: a Kafka topic `{group}-dlt` (one per group, undated, so
//! topic retention never deletes it), chosen over a table because every consumer has the
//! broker but not necessarily a database, and because it keeps the original bytes, key and
//! headers exactly. Each record carries `dlt.*` headers: the original topic, partition and
//! offset, the error, the attempts, the group and when it failed.
//!
//! [`DeadLetters::redrive`] replays them through the group's handler (same dedup), up to the
//! end of the topic as it was when the re-drive started; what fails again is appended anew.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use contracts::EventEnvelope;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use service_runtime::kafka::KafkaSettings;

use super::dedup::{Claim, Dedup};
use super::{EventHandler, RecordInfo};
use crate::topics::TopicAdmin;

pub const ORIGINAL_TOPIC: &str = "dlt.original.topic";
pub const ORIGINAL_PARTITION: &str = "dlt.original.partition";
pub const ORIGINAL_OFFSET: &str = "dlt.original.offset";
pub const ERROR: &str = "dlt.error";
pub const ATTEMPTS: &str = "dlt.attempts";
pub const GROUP: &str = "dlt.group";
pub const FAILED_AT: &str = "dlt.failed_at";

/// Where a failed message came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What a re-drive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RedriveReport {
    /// Dead letters handled successfully (or found already handled).
    pub replayed: u64,
    /// Dead letters that failed again and were appended to the topic anew.
    pub failed_again: u64,
}

pub struct DeadLetters {
    producer: FutureProducer,
    topics: Arc<TopicAdmin>,
    kafka: KafkaSettings,
    group: String,
    topic: String,
}

fn header_str<'a>(message: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

impl DeadLetters {
    pub(crate) fn new(
        producer: FutureProducer,
        topics: Arc<TopicAdmin>,
        kafka: KafkaSettings,
        group: &str,
    ) -> Self {
        Self {
            producer,
            topics,
            kafka,
            topic: format!("{group}-dlt"),
            group: group.to_owned(),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Where `message` originally came from: its own coordinates, or the `dlt.original.*`
    /// headers if it is itself a dead letter.
    pub fn origin_of(message: &BorrowedMessage<'_>) -> Origin {
        let parsed = (
            header_str(message, ORIGINAL_TOPIC),
            header_str(message, ORIGINAL_PARTITION).and_then(|p| p.parse().ok()),
            header_str(message, ORIGINAL_OFFSET).and_then(|o| o.parse().ok()),
        );
        match parsed {
            (Some(topic), Some(partition), Some(offset)) => Origin {
                topic: topic.to_owned(),
                partition,
                offset,
            },
            _ => Origin {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
            },
        }
    }

    /// Appends `message` to the dead-letter topic with why it failed.
    pub async fn send(
        &self,
        message: &BorrowedMessage<'_>,
        error: &str,
        attempts: u32,
    ) -> Result<(), String> {
        self.topics
            .ensure_with_partitions(std::slice::from_ref(&self.topic), 1)
            .await
            .map_err(|e| format!("cannot create {}: {e:#}", self.topic))?;
        let origin = Self::origin_of(message);
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter().filter(|h| !h.key.starts_with("dlt.")) {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let attempts = attempts.to_string();
        let failed_at = Utc::now().to_rfc3339();
        let error: String = error.chars().take(4000).collect();
        for (key, value) in [
            (ORIGINAL_TOPIC, origin.topic.as_str()),
            (ORIGINAL_PARTITION, partition.as_str()),
            (ORIGINAL_OFFSET, offset.as_str()),
            (ERROR, error.as_str()),
            (ATTEMPTS, attempts.as_str()),
            (GROUP, self.group.as_str()),
            (FAILED_AT, failed_at.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(5))
            .await
            .map(|_| ())
            .map_err(|(err, _)| err.to_string())
    }

    /// Replays every dead letter not yet re-driven, up to the end of the topic as of now.
    pub async fn redrive(
        &self,
        handler: &dyn EventHandler,
        dedup: &Dedup,
    ) -> anyhow::Result<RedriveReport> {
        self.topics
            .ensure_with_partitions(std::slice::from_ref(&self.topic), 1)
            .await?;
        let consumer: StreamConsumer = self
            .kafka
            .client_config()
            .set("group.id", format!("{}-redrive", self.topic))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        let consumer = Arc::new(consumer);
        let topic = self.topic.clone();
        let probe = Arc::clone(&consumer);
        // Partitions with their committed position and current end, looked up off the
        // async workers (librdkafka blocks).
        let ranges =
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(i32, i64, i64)>> {
                let timeout = Duration::from_secs(10);
                let metadata = probe.fetch_metadata(Some(&topic), timeout)?;
                let partitions: Vec<i32> = metadata
                    .topics()
                    .iter()
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                let mut tpl = TopicPartitionList::new();
                for p in &partitions {
                    tpl.add_partition(&topic, *p);
                }
                let committed = probe.committed_offsets(tpl, timeout)?;
                let mut ranges = Vec::new();
                for p in partitions {
                    let (low, high) = probe.fetch_watermarks(&topic, p, timeout)?;
                    let start = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => low,
                    };
                    if start < high {
                        ranges.push((p, start, high));
                    }
                }
                Ok(ranges)
            })
            .await??;

        let mut report = RedriveReport::default();
        if ranges.is_empty() {
            return Ok(report);
        }
        let mut assignment = TopicPartitionList::new();
        for (p, start, _) in &ranges {
            assignment.add_partition_offset(&self.topic, *p, Offset::Offset(*start))?;
        }
        consumer.assign(&assignment)?;
        let mut remaining: std::collections::HashMap<i32, i64> =
            ranges.iter().map(|(p, _, high)| (*p, *high)).collect();
        while !remaining.is_empty() {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .map_err(|_| anyhow::anyhow!("dead-letter topic stopped delivering"))??;
            let partition = message.partition();
            let Some(&end) = remaining.get(&partition) else {
                continue;
            };
            if message.offset() >= end {
                remaining.remove(&partition);
                continue;
            }
            if self.replay(&message, handler, dedup).await {
                report.replayed += 1;
            } else {
                let attempts = header_str(&message, ATTEMPTS)
                    .and_then(|a| a.parse::<u32>().ok())
                    .unwrap_or(0)
                    + 1;
                self.send(&message, "failed again during re-drive", attempts)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                report.failed_again += 1;
            }
            consumer.commit_message(&message, CommitMode::Sync)?;
            if message.offset() + 1 >= end {
                remaining.remove(&partition);
            }
        }
        metrics::counter!("consumer_dead_letters_redriven_total").increment(report.replayed);
        Ok(report)
    }

    /// One dead letter through the handler; `true` if it is now handled.
    async fn replay(
        &self,
        message: &BorrowedMessage<'_>,
        handler: &dyn EventHandler,
        dedup: &Dedup,
    ) -> bool {
        let Some(Ok(event)) = message
            .payload()
            .map(serde_json::from_slice::<EventEnvelope>)
        else {
            return false;
        };
        let key = dedup.key(&event);
        match dedup.claim(&key).await {
            Claim::Duplicate => return true,
            Claim::InProgress => return false,
            Claim::Acquired | Claim::Unavailable => {}
        }
        let origin = Self::origin_of(message);
        let info = RecordInfo {
            topic: origin.topic,
            partition: origin.partition,
            offset: origin.offset,
        };
        match handler.handle(&event, &info).await {
            Ok(()) => {
                dedup.complete(&key).await;
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "dead letter failed again");
                dedup.release(&key).await;
                false
            }
        }
    }
}
