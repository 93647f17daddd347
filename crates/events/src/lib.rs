//! The event backbone every dailyfeed service publishes and consumes through.
//!
//! Publishing: write the change and [`outbox::append`] the event in one transaction; run an
//! [`outbox::OutboxRelay`] in the background. It publishes to date-suffixed topics
//! (`{prefix}{name}-yyyyMMdd` in `TOPIC_ZONE`), in order per aggregate, and keeps the topics
//! (created ahead, retired after `KAFKA_TOPIC_RETENTION_DAYS`).
//!
//! Consuming: implement [`consumer::EventHandler`] and run a [`consumer::ConsumerRunner`]:
//! regex subscription across days, at-least-once, Redis dedup, retries and dead letters.
//!
//! Trace context travels from the HTTP request through the outbox row and the Kafka headers
//! into the consumer's span.

pub mod admin;
pub mod consumer;
pub mod outbox;
pub mod settings;
pub mod topics;

use service_runtime::kafka::KafkaSettings;
use service_runtime::{ConfigError, EnvSource, ServiceName};

pub use consumer::{
    CheckpointPolicy, ConsumerRunner, EventHandler, HandlerError, RecordInfo, Redriver,
};
pub use outbox::{OutboxRelay, RelayHandle, append};
pub use settings::{ConsumerSettings, ProducerSettings, RelaySettings, TopicSettings};

/// Everything the backbone reads from the environment (see README "Events").
#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub kafka: KafkaSettings,
    pub producer: ProducerSettings,
    pub topics: TopicSettings,
    pub relay: RelaySettings,
    pub consumer: ConsumerSettings,
}

impl EventsConfig {
    pub fn from_env(env: &dyn EnvSource, service: ServiceName) -> Result<Self, ConfigError> {
        Ok(Self {
            kafka: KafkaSettings::from_env(env, service)?,
            producer: ProducerSettings::from_env(env)?,
            topics: TopicSettings::from_env(env)?,
            relay: RelaySettings::from_env(env)?,
            consumer: ConsumerSettings::from_env(env)?,
        })
    }
}
