//! activity's configuration: the shared env vocabulary plus the variables below.

use std::time::Duration;

use events::EventsConfig;
use pagination::CursorCodec;
use service_runtime::config::{ranged_or, string_or};
use service_runtime::mongodb::MongoSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings, ServiceName};

use crate::SERVICE;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub mongodb: MongoSettings,
    pub redis: RedisSettings,
    pub events: EventsConfig,
    pub auth: auth::AuthSettings,
    pub cursor: CursorCodec,
    /// `MEMBER_URL` (default `http://127.0.0.1:8081`): where following lists come from.
    pub member_url: url::Url,
    /// `MEMBER_CLIENT_*` (tier `critical`): timeout, retries, breaker, rate limit.
    pub member_client: resilience::ClientSettings,
    /// `FOLLOWING_CACHE_SECONDS` (default 60): how long a following list is cached.
    pub following_ttl: Duration,
    /// `ACTIVITY_RETENTION_DAYS` (default 30): the TTL of stored activity.
    pub retention: Duration,
    /// `ACTIVITY_CONSUMER_GROUP` (default `activity`).
    pub consumer_group: String,
    /// `SERVICE_IDENTITY_KEY` & co: this service's identity on its `/internal/**` calls.
    pub identity: auth::ServiceIdentity,
    /// `ADMIN_ALLOWED_CIDRS`: where `/admin/**` may be called from (auth::AdminGuard).
    pub admin: auth::AdminGuard,
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let group = string_or(env, "ACTIVITY_CONSUMER_GROUP", "activity");
        if group.is_empty()
            || !group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError::new(
                "ACTIVITY_CONSUMER_GROUP",
                &group,
                "use letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            mongodb: MongoSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            auth: auth::AuthSettings::from_env(env)?,
            identity: auth::ServiceIdentity::from_env(env, SERVICE)?,
            admin: auth::AdminGuard::from_env(env)?,
            cursor: CursorCodec::from_env(env)?,
            member_url: ServiceName::Member.peer_url(env)?,
            member_client: resilience::ClientSettings::from_env(
                env,
                "member",
                resilience::Tier::Critical,
            )?,
            following_ttl: Duration::from_secs(ranged_or(
                env,
                "FOLLOWING_CACHE_SECONDS",
                60,
                1..=86_400,
            )?),
            retention: Duration::from_secs(
                86_400 * ranged_or::<u64>(env, "ACTIVITY_RETENTION_DAYS", 30, 1..=3650)?,
            ),
            consumer_group: group,
        })
    }
}
