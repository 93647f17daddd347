//! Kafka: `KAFKA_BROKERS`, `KAFKA_TOPIC_PREFIX`, `KAFKA_CLIENT_ID`, `TOPIC_ZONE`, and a probe
//! that asks the brokers for cluster metadata.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contracts::TopicZone;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::{ConfigError, EnvSource, ServiceName, parse_or, string_or};
use crate::health::Probe;

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `KAFKA_BROKERS` (default `127.0.0.1:9092`): comma-separated bootstrap servers.
    pub brokers: String,
    /// `KAFKA_TOPIC_PREFIX` (default empty): prepended to topic names and consumer groups.
    pub topic_prefix: String,
    /// `KAFKA_CLIENT_ID` (default `dailyfeed-<service>`).
    pub client_id: String,
    /// `TOPIC_ZONE` (default `UTC`): the IANA zone whose calendar dates topics.
    pub topic_zone: TopicZone,
    /// `KAFKA_DEBUG` (default unset): librdkafka debug contexts, e.g. `cgrp,fetch`.
    pub debug: Option<String>,
}

impl KafkaSettings {
    pub fn from_env(env: &dyn EnvSource, service: ServiceName) -> Result<Self, ConfigError> {
        let brokers = string_or(env, "KAFKA_BROKERS", "127.0.0.1:9092");
        if brokers
            .split(',')
            .any(|b| b.trim().rsplit_once(':').is_none())
        {
            return Err(ConfigError::new(
                "KAFKA_BROKERS",
                &brokers,
                "expected comma-separated host:port pairs",
            ));
        }
        let topic_prefix = string_or(env, "KAFKA_TOPIC_PREFIX", "");
        if !topic_prefix.is_empty() && !contracts::topics::is_valid_name(&topic_prefix) {
            return Err(ConfigError::new(
                "KAFKA_TOPIC_PREFIX",
                &topic_prefix,
                "only letters, digits, '-' and '_' are allowed",
            ));
        }
        Ok(Self {
            brokers,
            topic_prefix,
            client_id: string_or(env, "KAFKA_CLIENT_ID", &format!("dailyfeed-{service}")),
            topic_zone: parse_or(env, "TOPIC_ZONE", TopicZone::UTC)?,
            debug: env.get("KAFKA_DEBUG").filter(|v| !v.trim().is_empty()),
        })
    }

    /// A client config with the brokers and client id set.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        if let Some(debug) = &self.debug {
            config.set("debug", debug);
        }
        config
    }
}

/// Readiness: a metadata request to the brokers.
pub struct KafkaProbe {
    consumer: Arc<BaseConsumer>,
}

impl KafkaProbe {
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = settings
            .client_config()
            .set("group.id", format!("{}-probe", settings.client_id))
            .set("socket.connection.setup.timeout.ms", "2000")
            .set("log_level", "3")
            .create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
        })
    }
}

#[async_trait]
impl Probe for KafkaProbe {
    fn name(&self) -> &str {
        "kafka"
    }

    async fn check(&self) -> Result<(), String> {
        let consumer = Arc::clone(&self.consumer);
        // librdkafka's metadata call blocks; keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(None, Duration::from_millis(1500))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
