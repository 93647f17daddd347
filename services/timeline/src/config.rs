//! timeline's configuration: the shared env vocabulary plus the variables below.

use std::time::Duration;

use events::EventsConfig;
use pagination::CursorCodec;
use service_runtime::config::{parse_or, ranged_or, string_or};
use service_runtime::postgres::PostgresSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings, ServiceName};

use crate::SERVICE;
use crate::state::CacheSettings;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub database: PostgresSettings,
    pub redis: RedisSettings,
    pub events: EventsConfig,
    pub auth: auth::AuthSettings,
    pub cursor: CursorCodec,
    pub cache: CacheSettings,
    /// `TIMELINE_CONSUMER_GROUP` (default `timeline`).
    pub consumer_group: String,
    /// `MEMBER_URL`: author profiles and (backfill) follows.
    pub member_url: url::Url,
    /// `MEMBER_CLIENT_*` (tier `critical`).
    pub member_client: resilience::ClientSettings,
    /// `CONTENT_URL`: posts (backfill).
    pub content_url: url::Url,
    /// `CONTENT_CLIENT_*` (tier `default`).
    pub content_client: resilience::ClientSettings,
    /// `SERVICE_IDENTITY_KEY` & co: this service's identity on its `/internal/**` calls.
    pub identity: auth::ServiceIdentity,
    /// `ADMIN_ALLOWED_CIDRS`: where `/admin/**` may be called from (auth::AdminGuard).
    pub admin: auth::AdminGuard,
}

fn seconds(env: &dyn EnvSource, name: &str, default: u64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(ranged_or(
        env,
        name,
        default,
        1..=86_400,
    )?))
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let mut auth = auth::AuthSettings::from_env(env)?;
        // A read-only feed keeps answering while Redis (the blacklist) is down.
        auth.blacklist_fail_open = parse_or(env, "AUTH_BLACKLIST_FAIL_OPEN", true)?;
        let group = string_or(env, "TIMELINE_CONSUMER_GROUP", "timeline");
        Ok(Self {
            consumer_group: group,
            http: HttpSettings::from_env(env, SERVICE)?,
            database: PostgresSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            auth,
            cursor: CursorCodec::from_env(env)?,
            cache: CacheSettings {
                feed_ttl: seconds(env, "FEED_CACHE_SECONDS", 60)?,
                hot_ttl: seconds(env, "HOT_CACHE_SECONDS", 30)?,
                author_ttl: seconds(env, "AUTHOR_CACHE_SECONDS", 300)?,
                local_ttl: Duration::from_millis(ranged_or(
                    env,
                    "TIMELINE_LOCAL_CACHE_MILLIS",
                    1000,
                    0..=60_000,
                )?),
                local_entries: ranged_or(
                    env,
                    "TIMELINE_LOCAL_CACHE_ENTRIES",
                    10_000,
                    0..=1_000_000,
                )?,
                inbox_keep: Duration::from_secs(
                    86_400 * ranged_or(env, "TIMELINE_INBOX_DAYS", 30_u64, 1..=3650)?,
                ),
            },
            member_url: ServiceName::Member.peer_url(env)?,
            member_client: resilience::ClientSettings::from_env(
                env,
                "member",
                resilience::Tier::Critical,
            )?,
            content_url: ServiceName::Content.peer_url(env)?,
            content_client: resilience::ClientSettings::from_env(
                env,
                "content",
                resilience::Tier::Default,
            )?,
            identity: auth::ServiceIdentity::from_env(env, SERVICE)?,
            admin: auth::AdminGuard::from_env(env)?,
        })
    }
}
