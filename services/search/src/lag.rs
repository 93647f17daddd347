//! Readiness: the index is open, a bootstrap (if any) is done, and the consumer has come
//! within `SEARCH_READY_MAX_LAG` events of the end of every content topic (measured once
//! before the service listens, then every second; while Kafka cannot be asked, the kafka
//! probe is the one that fails). Once reached it
//! stays ready: afterwards lag is a metric (`search_consumer_lag`), and serving slightly
//! stale results beats serving none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use contracts::TopicName;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use service_runtime::health::Probe;
use service_runtime::kafka::KafkaSettings;
use tokio_util::sync::CancellationToken;

use crate::indexer::Applied;
use crate::rebuild::Rebuilder;

const UNKNOWN: i64 = -1;

#[derive(Clone)]
pub struct CatchUp {
    lag: Arc<AtomicI64>,
    caught_up: Arc<AtomicBool>,
    max_lag: i64,
    rebuilder: Rebuilder,
}

impl CatchUp {
    pub fn new(max_lag: i64, rebuilder: Rebuilder) -> Self {
        Self {
            lag: Arc::new(AtomicI64::new(UNKNOWN)),
            caught_up: Arc::new(AtomicBool::new(false)),
            max_lag,
            rebuilder,
        }
    }

    pub fn lag(&self) -> Option<i64> {
        let lag = self.lag.load(Ordering::Relaxed);
        (lag >= 0).then_some(lag)
    }

    /// Measures the lag once (`timeout` per Kafka request).
    pub async fn measure_once(
        &self,
        consumer: &Arc<BaseConsumer>,
        topic: &str,
        applied: &Applied,
        timeout: Duration,
    ) {
        let (c, a, t) = (Arc::clone(consumer), applied.clone(), topic.to_owned());
        let measured = tokio::task::spawn_blocking(move || measure(&c, &t, &a, timeout)).await;
        match measured {
            Ok(Ok(lag)) => {
                self.lag.store(lag, Ordering::Relaxed);
                metrics::gauge!("search_consumer_lag").set(lag as f64);
                if lag <= self.max_lag && !self.rebuilder.status().running {
                    self.caught_up.store(true, Ordering::Relaxed);
                }
            }
            Ok(Err(err)) => tracing::debug!(error = %err, "cannot measure consumer lag"),
            Err(err) => tracing::debug!(error = %err, "lag probe task failed"),
        }
    }

    /// The lag probe's Kafka client and the topic name it watches.
    /// `group` is the consumer's group: its committed offsets count as applied.
    pub fn client(
        kafka: &KafkaSettings,
        group: &str,
    ) -> anyhow::Result<(Arc<BaseConsumer>, String)> {
        let consumer: BaseConsumer = kafka
            .client_config()
            .set("group.id", format!("{}{group}", kafka.topic_prefix))
            .set("enable.auto.commit", "false")
            .create()?;
        let topic = TopicName::CONTENT_EVENTS.prefixed(&kafka.topic_prefix);
        Ok((Arc::new(consumer), topic))
    }

    /// Measures the lag every second until `shutdown`.
    pub async fn watch(
        self,
        consumer: Arc<BaseConsumer>,
        topic: String,
        applied: Applied,
        shutdown: CancellationToken,
    ) {
        loop {
            self.measure_once(&consumer, &topic, &applied, Duration::from_secs(5))
                .await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Whether `topic` is one of `name`'s dated topics (`{name}-YYYYMMDD`).
fn is_dated(topic: &str, name: &str) -> bool {
    topic
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
}

/// Events on `name`'s topics not yet applied to the index.
fn measure(
    consumer: &BaseConsumer,
    name: &str,
    applied: &Applied,
    timeout: Duration,
) -> anyhow::Result<i64> {
    let metadata = consumer.fetch_metadata(None, timeout)?;
    let applied = applied
        .lock()
        .map(|a| a.clone())
        .map_err(|_| anyhow::anyhow!("applied offsets lock poisoned"))?;
    let mut partitions = TopicPartitionList::new();
    for topic in metadata
        .topics()
        .iter()
        .filter(|t| is_dated(t.name(), name))
    {
        for partition in topic.partitions() {
            partitions.add_partition(topic.name(), partition.id());
        }
    }
    if partitions.count() == 0 {
        return Ok(0);
    }
    // Where the group resumes after a restart: the offsets it committed last time.
    let committed = consumer.committed_offsets(partitions.clone(), timeout)?;
    let mut lag = 0;
    for element in partitions.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        let resumes_at = match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(n)) => n,
            _ => low,
        };
        let next = applied
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or(low)
            .max(resumes_at)
            .max(low);
        lag += (high - next).max(0);
    }
    Ok(lag)
}

#[async_trait]
impl Probe for CatchUp {
    fn name(&self) -> &str {
        "index"
    }

    async fn check(&self) -> Result<(), String> {
        if self.caught_up.load(Ordering::Relaxed) {
            return Ok(());
        }
        let status = self.rebuilder.status();
        if status.running {
            return Err(format!(
                "{} from content: {} posts so far",
                status.kind.unwrap_or_default(),
                status.posts
            ));
        }
        match self.lag() {
            // Kafka did not answer: the kafka probe says so; the index has nothing to add.
            None => Ok(()),
            Some(lag) => Err(format!(
                "consumer {lag} events behind (ready at {} or fewer)",
                self.max_lag
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_dated;

    #[test]
    fn recognises_dated_topics_only() {
        assert!(is_dated("t1-content-events-20261125", "t1-content-events"));
        assert!(!is_dated("t1-content-events-dlt", "t1-content-events"));
        assert!(!is_dated("t1-content-events-2026112", "t1-content-events"));
        assert!(!is_dated(
            "x-t1-content-events-20261125",
            "t1-content-events"
        ));
    }
}
