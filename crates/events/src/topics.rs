//! The lifecycle of date-suffixed topics: created ahead of time (today's and tomorrow's, and
//! any older day a backlog still needs), never by broker auto-create; deleted once older
//! than the retention (today and yesterday always stay).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use contracts::topics::{day_of_topic, topic_for_day};
use contracts::{TopicName, TopicZone};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use service_runtime::kafka::KafkaSettings;

use crate::settings::TopicSettings;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates and deletes this service's dated topics.
pub struct TopicAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    prefix: String,
    zone: TopicZone,
    settings: TopicSettings,
    /// Topics known to exist, so the hot path creates each one once.
    known: Mutex<HashSet<String>>,
}

impl TopicAdmin {
    pub fn new(kafka: &KafkaSettings, settings: TopicSettings) -> anyhow::Result<Self> {
        let admin = kafka.client_config().create()?;
        Ok(Self {
            admin: Arc::new(admin),
            prefix: kafka.topic_prefix.clone(),
            zone: kafka.topic_zone,
            settings,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// The full (prefixed) dated topic for `name` on `day`.
    pub fn topic(&self, name: &str, day: NaiveDate) -> String {
        topic_for_day(&format!("{}{name}", self.prefix), day)
    }

    pub fn maintenance_interval(&self) -> Duration {
        self.settings.maintenance_interval
    }

    pub fn zone(&self) -> TopicZone {
        self.zone
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn is_known(&self, topic: &str) -> bool {
        self.known
            .lock()
            .map(|known| known.contains(topic))
            .unwrap_or(false)
    }

    fn remember(&self, topic: &str) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(topic.to_owned());
        }
    }

    /// Makes sure every topic in `topics` exists (already existing is fine).
    pub async fn ensure(&self, topics: &[String]) -> anyhow::Result<()> {
        self.ensure_with_partitions(topics, self.settings.partitions)
            .await
    }

    /// Like [`Self::ensure`], with an explicit partition count (dead-letter topics use 1).
    pub async fn ensure_with_partitions(
        &self,
        topics: &[String],
        partitions: i32,
    ) -> anyhow::Result<()> {
        let missing: Vec<&String> = topics.iter().filter(|t| !self.is_known(t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| {
                NewTopic::new(
                    t.as_str(),
                    partitions,
                    TopicReplication::Fixed(self.settings.replication_factor),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        let results = self.admin.create_topics(&new_topics, &options).await?;
        for result in results {
            match result {
                Ok(topic) => {
                    tracing::info!(topic, "created topic");
                    self.remember(&topic);
                }
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => self.remember(&topic),
                Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
            }
        }
        Ok(())
    }

    /// Creates today's and tomorrow's topic of each name ahead of time.
    pub async fn create_ahead(&self, names: &[TopicName]) -> anyhow::Result<()> {
        let today = self.zone.day_of(Utc::now());
        let tomorrow = today.succ_opt().unwrap_or(today);
        let topics: Vec<String> = names
            .iter()
            .flat_map(|n| {
                [
                    self.topic(n.as_str(), today),
                    self.topic(n.as_str(), tomorrow),
                ]
            })
            .collect();
        self.ensure(&topics).await
    }

    /// Deletes dated topics of `names` older than the retention. Returns the deleted topics.
    pub async fn delete_expired(&self, names: &[TopicName]) -> anyhow::Result<Vec<String>> {
        let today = self.zone.day_of(Utc::now());
        self.delete_older_than(names, today, self.settings.retention_days)
            .await
    }

    /// Deletes topics of `names` whose day is more than `retention_days` before `today`.
    /// `retention_days` is at least 1, so today's and yesterday's topics always survive.
    pub async fn delete_older_than(
        &self,
        names: &[TopicName],
        today: NaiveDate,
        retention_days: u32,
    ) -> anyhow::Result<Vec<String>> {
        let cutoff = today - chrono::Duration::days(i64::from(retention_days.max(1)));
        let existing = self.list().await?;
        let expired: Vec<String> = existing
            .into_iter()
            .filter(|topic| {
                names.iter().any(|name| {
                    day_of_topic(&format!("{}{name}", self.prefix), topic)
                        .is_some_and(|day| day < cutoff)
                })
            })
            .collect();
        if expired.is_empty() {
            return Ok(expired);
        }
        let refs: Vec<&str> = expired.iter().map(String::as_str).collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        for result in self.admin.delete_topics(&refs, &options).await? {
            match result {
                Ok(topic) => {
                    tracing::info!(topic, "deleted expired topic");
                    if let Ok(mut known) = self.known.lock() {
                        known.remove(&topic);
                    }
                }
                Err((topic, code)) => tracing::warn!(topic, %code, "cannot delete topic"),
            }
        }
        Ok(expired)
    }

    /// Every topic the broker knows.
    pub async fn list(&self) -> anyhow::Result<Vec<String>> {
        let admin = Arc::clone(&self.admin);
        // librdkafka's metadata call blocks; keep it off the async workers.
        let metadata =
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, ADMIN_TIMEOUT))
                .await??;
        Ok(metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .collect())
    }
}
