//! member's configuration: the shared env vocabulary (README "Configuration") plus the
//! variables below (README "member").

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use events::EventsConfig;
use pagination::CursorCodec;
use service_runtime::config::{parse_or, ranged_or, seconds_or, url_or};
use service_runtime::postgres::PostgresSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings};

use crate::SERVICE;
use crate::domain::oauth::{Provider, ProviderSettings};
use crate::domain::passwords::HashParams;

/// A development-only master key: services log a warning when they run with it.
const DEV_MASTER_KEY: [u8; 32] = *b"dailyfeed-dev-master-key-32bytes";

#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `ACCESS_TOKEN_TTL_SECONDS` (default 900 = 15 min).
    pub access_ttl: Duration,
    /// `REFRESH_TOKEN_TTL_SECONDS` (default 604800 = 7 days).
    pub refresh_ttl: Duration,
    /// `REFRESH_FAMILY_MAX_SECONDS` (default 2592000 = 30 days): a login's absolute lifetime.
    pub family_lifetime: Duration,
    /// `JWT_KEY_ROTATION_SECONDS` (default 3600, the seed's hourly rotation).
    pub rotation: Duration,
    /// `JWT_MASTER_KEY`: base64 of 32 bytes sealing the private keys at rest.
    pub master_key: [u8; 32],
    pub master_key_is_default: bool,
    /// `REFRESH_COOKIE_SECURE` (default true): the cookie's `Secure` flag.
    pub cookie_secure: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub database: PostgresSettings,
    pub redis: RedisSettings,
    pub events: EventsConfig,
    pub auth: auth::AuthSettings,
    pub tokens: TokenSettings,
    pub password: HashParams,
    /// `LOGIN_ATTEMPTS_PER_MINUTE` (default 10, seed 000): per client IP and per account.
    pub login_attempts_per_minute: u32,
    /// `TRUST_FORWARDED_FOR` (default false): take the client IP from `X-Forwarded-For`
    /// (only behind the gateway, which sets it).
    pub trust_forwarded_for: bool,
    /// `MEMBER_PUBLIC_URL` (default `http://127.0.0.1:8081`): how browsers reach member, for
    /// OAuth callback URLs.
    pub public_url: url::Url,
    pub oauth: Vec<ProviderSettings>,
    pub cursor: CursorCodec,
    /// `SERVICE_IDENTITY_PEERS` & co: who may call `/internal/**` (auth::service_identity).
    pub service_peers: auth::ServicePeers,
    /// `ADMIN_ALLOWED_CIDRS`: where `/admin/**` may be called from (auth::AdminGuard).
    pub admin: auth::AdminGuard,
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let (master_key, master_key_is_default) =
            match env.get("JWT_MASTER_KEY").filter(|v| !v.is_empty()) {
                None => (DEV_MASTER_KEY, true),
                Some(raw) => {
                    let bytes = STANDARD
                        .decode(raw.trim())
                        .map_err(|e| ConfigError::new("JWT_MASTER_KEY", "<redacted>", e))?;
                    let key: [u8; 32] = bytes.try_into().map_err(|_| {
                        ConfigError::new(
                            "JWT_MASTER_KEY",
                            "<redacted>",
                            "must be base64 of exactly 32 bytes",
                        )
                    })?;
                    (key, false)
                }
            };
        let public_url = url_or(
            env,
            "MEMBER_PUBLIC_URL",
            "http://127.0.0.1:8081",
            &["http", "https"],
        )?;
        let mut oauth = Vec::new();
        for provider in [Provider::Google, Provider::Kakao] {
            oauth.extend(ProviderSettings::from_env(env, provider, &public_url)?);
        }
        let access_ttl = seconds_or(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 1)?;
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            database: PostgresSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            auth: auth::AuthSettings::from_env(env)?,
            tokens: TokenSettings {
                access_ttl,
                refresh_ttl: seconds_or(env, "REFRESH_TOKEN_TTL_SECONDS", 7 * 86_400, 1)?,
                family_lifetime: seconds_or(env, "REFRESH_FAMILY_MAX_SECONDS", 30 * 86_400, 1)?,
                rotation: seconds_or(env, "JWT_KEY_ROTATION_SECONDS", 3600, 1)?,
                master_key,
                master_key_is_default,
                cookie_secure: parse_or(env, "REFRESH_COOKIE_SECURE", true)?,
            },
            password: HashParams {
                memory_kib: ranged_or(env, "ARGON2_MEMORY_KIB", 19_456, 8..=4_194_304)?,
                iterations: ranged_or(env, "ARGON2_ITERATIONS", 2, 1..=100)?,
                parallelism: ranged_or(env, "ARGON2_PARALLELISM", 1, 1..=64)?,
            },
            login_attempts_per_minute: ranged_or(
                env,
                "LOGIN_ATTEMPTS_PER_MINUTE",
                10,
                1..=100_000,
            )?,
            trust_forwarded_for: parse_or(env, "TRUST_FORWARDED_FOR", false)?,
            public_url,
            oauth,
            cursor: CursorCodec::from_env(env)?,
            service_peers: auth::ServicePeers::from_env(env, SERVICE)?,
            admin: auth::AdminGuard::from_env(env)?,
        })
    }
}
