//! content's configuration: the shared env vocabulary plus the variables below.

use std::time::Duration;

use events::EventsConfig;
use pagination::CursorCodec;
use service_runtime::config::ranged_or;
use service_runtime::postgres::PostgresSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings};

use crate::SERVICE;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub database: PostgresSettings,
    pub redis: RedisSettings,
    pub events: EventsConfig,
    pub auth: auth::AuthSettings,
    pub cursor: CursorCodec,
    /// `IDEMPOTENCY_KEY_TTL_HOURS` (default 24): how long a create can be retried safely.
    pub idempotency_ttl: Duration,
    /// `SERVICE_IDENTITY_PEERS` & co: who may call `/internal/**` (auth::service_identity).
    pub service_peers: auth::ServicePeers,
    /// `ADMIN_ALLOWED_CIDRS`: where `/admin/**` may be called from (auth::AdminGuard).
    pub admin: auth::AdminGuard,
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            database: PostgresSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            auth: auth::AuthSettings::from_env(env)?,
            cursor: CursorCodec::from_env(env)?,
            idempotency_ttl: Duration::from_secs(
                3600 * ranged_or::<u64>(env, "IDEMPOTENCY_KEY_TTL_HOURS", 24, 1..=24 * 30)?,
            ),
            service_peers: auth::ServicePeers::from_env(env, SERVICE)?,
            admin: auth::AdminGuard::from_env(env)?,
        })
    }
}
