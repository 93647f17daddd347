//! search's configuration: the shared env vocabulary plus the `SEARCH_*` variables below
//! (README "Configuration", docs/search.md).

use std::path::PathBuf;
use std::time::Duration;

use events::EventsConfig;
use pagination::CursorCodec;
use service_runtime::config::{parse_or, ranged_or, string_or};
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings, ServiceName};

use crate::SERVICE;
use crate::search::Ranking;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub redis: RedisSettings,
    pub events: EventsConfig,
    pub cursor: CursorCodec,
    pub index: IndexSettings,
    /// `SEARCH_CONSUMER_GROUP` (default `search-$HOSTNAME`): each instance keeps a full
    /// index, so each needs its own group to see every event.
    pub consumer_group: String,
    /// `CONTENT_URL`: `/internal/posts` for rebuilds.
    pub content_url: url::Url,
    /// `CONTENT_CLIENT_*` (tier `default`).
    pub content_client: resilience::ClientSettings,
    /// Member's JWKS and the blacklist, for the ADMIN tokens `/admin/**` takes.
    pub auth: auth::AuthSettings,
    /// `SERVICE_IDENTITY_KEY` & co: this service's identity on its `/internal/**` calls.
    pub identity: auth::ServiceIdentity,
    /// `ADMIN_ALLOWED_CIDRS`: where `/admin/**` may be called from (auth::AdminGuard).
    pub admin: auth::AdminGuard,
}

#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// `SEARCH_INDEX_DIR` (default `data/search-index`).
    pub dir: PathBuf,
    /// `SEARCH_WRITER_MEMORY_MB` (default 64): the writer's indexing buffer.
    pub writer_memory: usize,
    /// `SEARCH_COMMIT_MAX_DOCS` (default 1000) / `SEARCH_COMMIT_INTERVAL_MS` (default 200):
    /// the index commits (and the consumer's offsets follow) after this many events or this
    /// long after the first uncommitted one. The interval bounds freshness.
    pub commit_max_docs: usize,
    pub commit_interval: Duration,
    /// `SEARCH_READY_MAX_LAG` (default 100): readiness waits until the consumer is this
    /// close to the end of every topic (once; afterwards lag is a metric, not an outage).
    pub ready_max_lag: i64,
    /// `SEARCH_BOOTSTRAP` (default true): an empty index is filled from content at start.
    pub bootstrap: bool,
    /// `SEARCH_MAX_QUERY_CHARS` (default 200).
    pub max_query_chars: usize,
    /// `SEARCH_MAX_RESULTS` (default 1000): how deep paging goes.
    pub max_results: usize,
    /// `SEARCH_RECENCY_HALF_LIFE_HOURS` (default 72) / `SEARCH_RECENCY_WEIGHT` (default 1).
    pub ranking: Ranking,
    /// `SEARCH_MAX_CONCURRENT` (default: 2 × cores): searches run at once; more wait their
    /// turn in order (many more threads than cores only stretch every search: measured,
    /// docs/benchmarks.md).
    pub max_concurrent: usize,
    /// `SEARCH_CURSOR_TTL_SECONDS` (default 300): how long a page's snapshot is kept.
    pub cursor_ttl: Duration,
    /// `SEARCH_TEST_CRASH_AFTER_COMMITS` (default 0 = off): test hook, see `indexer`.
    pub crash_after_commits: u64,
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let host = string_or(env, "HOSTNAME", "local");
        let default_group = format!("search-{host}");
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            cursor: CursorCodec::from_env(env)?,
            index: IndexSettings::from_env(env)?,
            consumer_group: string_or(env, "SEARCH_CONSUMER_GROUP", &default_group),
            content_url: ServiceName::Content.peer_url(env)?,
            content_client: resilience::ClientSettings::from_env(
                env,
                "content",
                resilience::Tier::Default,
            )?,
            auth: auth::AuthSettings::from_env(env)?,
            identity: auth::ServiceIdentity::from_env(env, SERVICE)?,
            admin: auth::AdminGuard::from_env(env)?,
        })
    }
}

impl IndexSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let half_life: f64 = parse_or(env, "SEARCH_RECENCY_HALF_LIFE_HOURS", 72.0)?;
        let weight: f64 = parse_or(env, "SEARCH_RECENCY_WEIGHT", 1.0)?;
        if !(half_life > 0.0 && half_life.is_finite()) {
            return Err(ConfigError::new(
                "SEARCH_RECENCY_HALF_LIFE_HOURS",
                &half_life.to_string(),
                "must be a positive number",
            ));
        }
        if !(0.0..=100.0).contains(&weight) {
            return Err(ConfigError::new(
                "SEARCH_RECENCY_WEIGHT",
                &weight.to_string(),
                "must be between 0 and 100",
            ));
        }
        let megabytes: usize = ranged_or(env, "SEARCH_WRITER_MEMORY_MB", 64, 16..=4096)?;
        Ok(Self {
            dir: PathBuf::from(string_or(env, "SEARCH_INDEX_DIR", "data/search-index")),
            writer_memory: megabytes * 1024 * 1024,
            commit_max_docs: ranged_or(env, "SEARCH_COMMIT_MAX_DOCS", 1000, 1..=1_000_000)?,
            commit_interval: Duration::from_millis(ranged_or(
                env,
                "SEARCH_COMMIT_INTERVAL_MS",
                200,
                10..=600_000,
            )?),
            ready_max_lag: ranged_or(env, "SEARCH_READY_MAX_LAG", 100, 0..=i64::MAX)?,
            bootstrap: parse_or(env, "SEARCH_BOOTSTRAP", true)?,
            max_query_chars: ranged_or(env, "SEARCH_MAX_QUERY_CHARS", 200, 1..=10_000)?,
            max_results: ranged_or(env, "SEARCH_MAX_RESULTS", 1000, 1..=100_000)?,
            ranking: Ranking {
                half_life_hours: half_life,
                weight,
            },
            max_concurrent: ranged_or(
                env,
                "SEARCH_MAX_CONCURRENT",
                2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
                1..=1024,
            )?,
            cursor_ttl: Duration::from_secs(ranged_or(
                env,
                "SEARCH_CURSOR_TTL_SECONDS",
                300,
                1..=86_400,
            )?),
            crash_after_commits: parse_or(env, "SEARCH_TEST_CRASH_AFTER_COMMITS", 0)?,
        })
    }
}
