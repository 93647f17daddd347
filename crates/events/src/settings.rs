//! Producer, topic, relay and consumer settings, from the shared env vocabulary.

use std::time::Duration;

use rdkafka::ClientConfig;
use service_runtime::config::{parse_or, ranged_or, seconds_or};
use service_runtime::{ConfigError, EnvSource};

/// `KAFKA_ACKS`: how many replicas acknowledge a write before it counts as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `0`: fire and forget. Loses messages; only for metrics-like data.
    None,
    /// `1` (the seed's default): the partition leader wrote it. A leader crash before the
    /// followers copy it loses it.
    Leader,
    /// `all`: every in-sync replica wrote it. For production, with the topic's
    /// `min.insync.replicas=2` and idempotence on.
    All,
}

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("`{other}` is not one of 0, 1, all")),
        }
    }
}

impl Acks {
    fn as_config(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// `KAFKA_COMPRESSION`. Snappy is refused: it corrupts tansu's sqlite partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            "snappy" => Err(
                "snappy is not supported (it breaks the broker's storage); use lz4, zstd or none"
                    .into(),
            ),
            other => Err(format!("`{other}` is not one of none, lz4, zstd")),
        }
    }
}

impl Compression {
    fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// How records are produced (outbox relay and dead letters).
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// `KAFKA_ACKS` (default `1`, the seed's choice).
    pub acks: Acks,
    /// `KAFKA_COMPRESSION` (default `lz4`).
    pub compression: Compression,
    /// `KAFKA_ENABLE_IDEMPOTENCE` (default `false`; requires `KAFKA_ACKS=all`).
    pub idempotence: bool,
    /// `KAFKA_MESSAGE_TIMEOUT_MS` (default 10000): how long librdkafka retries one record.
    pub message_timeout: Duration,
    /// `KAFKA_LINGER_MS` (default 5): batching delay.
    pub linger: Duration,
}

impl ProducerSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let acks = parse_or(env, "KAFKA_ACKS", Acks::Leader)?;
        let idempotence: bool = parse_or(env, "KAFKA_ENABLE_IDEMPOTENCE", false)?;
        if idempotence && acks != Acks::All {
            return Err(ConfigError::new(
                "KAFKA_ENABLE_IDEMPOTENCE",
                "true",
                "idempotence requires KAFKA_ACKS=all",
            ));
        }
        Ok(Self {
            acks,
            compression: parse_or(env, "KAFKA_COMPRESSION", Compression::Lz4)?,
            idempotence,
            message_timeout: Duration::from_millis(ranged_or(
                env,
                "KAFKA_MESSAGE_TIMEOUT_MS",
                10_000,
                100..=600_000,
            )?),
            linger: Duration::from_millis(ranged_or(env, "KAFKA_LINGER_MS", 5, 0..=1000)?),
        })
    }

    /// Applies these settings to a client config.
    pub fn apply(&self, config: &mut ClientConfig) {
        config
            .set("acks", self.acks.as_config())
            .set("compression.type", self.compression.as_config())
            .set("enable.idempotence", self.idempotence.to_string())
            .set(
                "message.timeout.ms",
                self.message_timeout.as_millis().to_string(),
            )
            .set("linger.ms", self.linger.as_millis().to_string());
    }
}

/// How dated topics are created and retired.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    /// `KAFKA_TOPIC_PARTITIONS` (default 3).
    pub partitions: i32,
    /// `KAFKA_TOPIC_REPLICATION_FACTOR` (default 1; 3 in production).
    pub replication_factor: i32,
    /// `KAFKA_TOPIC_RETENTION_DAYS` (default 7, at least 1): dated topics older than this
    /// many days are deleted; today's and yesterday's are always kept.
    pub retention_days: u32,
    /// `KAFKA_TOPIC_MAINTENANCE_SECONDS` (default 3600): how often topics are created ahead
    /// and old ones deleted.
    pub maintenance_interval: Duration,
}

impl TopicSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            partitions: ranged_or(env, "KAFKA_TOPIC_PARTITIONS", 3, 1..=1000)?,
            replication_factor: ranged_or(env, "KAFKA_TOPIC_REPLICATION_FACTOR", 1, 1..=10)?,
            retention_days: ranged_or(env, "KAFKA_TOPIC_RETENTION_DAYS", 7, 1..=3650)?,
            maintenance_interval: seconds_or(env, "KAFKA_TOPIC_MAINTENANCE_SECONDS", 3600, 1)?,
        })
    }
}

/// The outbox relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `OUTBOX_BATCH_SIZE` (default 500): rows claimed per shard per round.
    pub batch_size: i64,
    /// `OUTBOX_POLL_INTERVAL_MS` (default 250): idle wait when no NOTIFY arrives.
    pub poll_interval: Duration,
    /// `OUTBOX_MAX_ATTEMPTS` (default 10): failed publishes before a row is dead.
    pub max_attempts: i32,
    /// `OUTBOX_BACKOFF_BASE_MS` (default 500) and `OUTBOX_BACKOFF_MAX_MS` (default 60000):
    /// retry delay `base * 2^(attempt-1)`, capped, with ±20 % jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// `OUTBOX_SENT_RETENTION_HOURS` (default 24): sent rows are pruned after this.
    pub sent_retention: Duration,
    /// `OUTBOX_REDRIVE_INTERVAL_SECONDS` (default 3600; 0 = never): how often dead rows are
    /// put back in play automatically.
    pub redrive_interval: Option<Duration>,
}

impl RelaySettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let redrive: u64 = parse_or(env, "OUTBOX_REDRIVE_INTERVAL_SECONDS", 3600)?;
        Ok(Self {
            batch_size: ranged_or(env, "OUTBOX_BATCH_SIZE", 500, 1..=10_000)?,
            poll_interval: Duration::from_millis(ranged_or(
                env,
                "OUTBOX_POLL_INTERVAL_MS",
                250,
                1..=60_000,
            )?),
            max_attempts: ranged_or(env, "OUTBOX_MAX_ATTEMPTS", 10, 1..=1000)?,
            backoff_base: Duration::from_millis(ranged_or(
                env,
                "OUTBOX_BACKOFF_BASE_MS",
                500,
                1..=3_600_000,
            )?),
            backoff_max: Duration::from_millis(ranged_or(
                env,
                "OUTBOX_BACKOFF_MAX_MS",
                60_000,
                1..=86_400_000,
            )?),
            sent_retention: Duration::from_secs(
                3600 * ranged_or::<u64>(env, "OUTBOX_SENT_RETENTION_HOURS", 24, 0..=24 * 365)?,
            ),
            redrive_interval: (redrive > 0).then(|| Duration::from_secs(redrive)),
        })
    }
}

/// A consumer runner.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// `CONSUMER_MAX_ATTEMPTS` (default 5): tries before a failing message is dead-lettered.
    pub max_attempts: u32,
    /// `CONSUMER_BACKOFF_BASE_MS` (default 200) / `CONSUMER_BACKOFF_MAX_MS` (default 30000).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// `CONSUMER_DEDUP_TTL_SECONDS` (default 604800 = 7 days, the topic retention).
    pub dedup_ttl: Duration,
    /// `CONSUMER_DEDUP_LEASE_SECONDS` (default 30): how long an in-progress claim blocks a
    /// redelivery of the same event (covers a consumer that died mid-handler).
    pub dedup_lease: Duration,
    /// `KAFKA_METADATA_REFRESH_MS` (default 30000): how soon a new day's topic is noticed.
    pub metadata_refresh: Duration,
    /// `KAFKA_AUTO_COMMIT_INTERVAL_MS` (default 5000): how often stored offsets are committed.
    pub commit_interval: Duration,
    /// `KAFKA_STATISTICS_INTERVAL_MS` (default 15000; 0 = off): consumer-lag metrics.
    pub statistics_interval: Duration,
    /// `KAFKA_FETCH_WAIT_MAX_MS` (default 50): the longest a fetch waits for data. Low,
    /// because tansu answers a waiting fetch only at this deadline, not when data arrives;
    /// with Kafka it can be raised (500 is librdkafka's default).
    pub fetch_wait_max: Duration,
    /// `KAFKA_SESSION_TIMEOUT_MS` (default 45000): how long a crashed member keeps its
    /// partitions before the group hands them to another.
    pub session_timeout: Duration,
}

impl ConsumerSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let ms = |name: &str, default: u64, max: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(ranged_or(
                env,
                name,
                default,
                0..=max,
            )?))
        };
        Ok(Self {
            max_attempts: ranged_or(env, "CONSUMER_MAX_ATTEMPTS", 5, 1..=1000)?,
            backoff_base: ms("CONSUMER_BACKOFF_BASE_MS", 200, 3_600_000)?,
            backoff_max: ms("CONSUMER_BACKOFF_MAX_MS", 30_000, 86_400_000)?,
            dedup_ttl: seconds_or(env, "CONSUMER_DEDUP_TTL_SECONDS", 7 * 86_400, 1)?,
            dedup_lease: seconds_or(env, "CONSUMER_DEDUP_LEASE_SECONDS", 30, 1)?,
            metadata_refresh: ms("KAFKA_METADATA_REFRESH_MS", 30_000, 3_600_000)?,
            commit_interval: ms("KAFKA_AUTO_COMMIT_INTERVAL_MS", 5_000, 3_600_000)?,
            statistics_interval: ms("KAFKA_STATISTICS_INTERVAL_MS", 15_000, 3_600_000)?,
            session_timeout: ms("KAFKA_SESSION_TIMEOUT_MS", 45_000, 3_600_000)?,
            fetch_wait_max: ms("KAFKA_FETCH_WAIT_MAX_MS", 50, 60_000)?,
        })
    }
}

/// `base * 2^(attempt-1)` capped at `max`, with ±20 % jitter so replicas don't retry in step.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let jitter: f64 = rand::random_range(0.8..1.2);
    capped.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {

    use super::*;

    use test_harness::vars as env;

    #[test]
    fn producer_defaults_follow_the_seed() {
        let p = ProducerSettings::from_env(&env(&[])).expect("defaults");
        assert_eq!(p.acks, Acks::Leader);
        assert_eq!(p.compression, Compression::Lz4);
        assert!(!p.idempotence);
    }

    #[test]
    fn snappy_and_idempotence_without_acks_all_are_refused() {
        let err = ProducerSettings::from_env(&env(&[("KAFKA_COMPRESSION", "snappy")]))
            .expect_err("snappy");
        assert_eq!(err.var, "KAFKA_COMPRESSION");
        let err = ProducerSettings::from_env(&env(&[("KAFKA_ENABLE_IDEMPOTENCE", "true")]))
            .expect_err("idempotence");
        assert_eq!(err.var, "KAFKA_ENABLE_IDEMPOTENCE");
        let ok = ProducerSettings::from_env(&env(&[
            ("KAFKA_ENABLE_IDEMPOTENCE", "true"),
            ("KAFKA_ACKS", "all"),
        ]))
        .expect("valid");
        assert!(ok.idempotence);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let first = backoff(1, base, max);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        let third = backoff(3, base, max);
        assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
        assert!(backoff(30, base, max) <= max);
    }
}
