//! member's configuration: the shared env vocabulary (README "Configuration") plus the
//! variables below (README "member").

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use events::EventsConfig;
use pagination::CursorCodec;
use service_runtime::config::{parse_or, ranged_or, refuse_retired, seconds_or, url_or};
use service_runtime::postgres::PostgresSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, Environment, HttpSettings, TrustedProxies};

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
    /// `REFRESH_COOKIE_SECURE` (default true): the cookie's `Secure` flag (also the login
    /// device cookie's).
    pub cookie_secure: bool,
    /// `REFRESH_REUSE_GRACE_SECONDS` (default 10, 0 = off): how long after a rotation the
    /// rotated token still answers with the same successor (two tabs refreshing at once).
    pub reuse_grace: Duration,
}

/// How many failed logins are tolerated (docs/member.md "Login limits"). Only failures
/// count: a correct password is never refused because of someone else's failures
/// elsewhere, except by the per-account ceiling, which a known device skips.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// `LOGIN_FAILURES_PER_ACCOUNT_CLIENT` (default 10, the seed's "10 per minute"; formerly
    /// `LOGIN_ATTEMPTS_PER_MINUTE`): failures per account from one client per `window`.
    pub per_account_client: u32,
    /// `LOGIN_FAILURES_PER_CLIENT` (default 30): failures from one client across all accounts
    /// per `window` (credential stuffing).
    pub per_client: u32,
    /// `LOGIN_FAILURE_WINDOW_SECONDS` (default 60).
    pub window: Duration,
    /// `LOGIN_FAILURES_PER_ACCOUNT` (default 100): failures per account from all clients
    /// (but its known devices) per `account_window` (distributed guessing).
    pub per_account: u32,
    /// `LOGIN_ACCOUNT_WINDOW_SECONDS` (default 3600).
    pub account_window: Duration,
    /// `LOGIN_DEVICE_TTL_SECONDS` (default 2592000 = 30 days): how long a browser that logged
    /// in to an account stays a known device of it (the `login_device` cookie).
    pub device_ttl: Duration,
}

impl LoginLimits {
    const LEGACY: &'static str = "LOGIN_ATTEMPTS_PER_MINUTE";
    const PER_ACCOUNT_CLIENT: &'static str = "LOGIN_FAILURES_PER_ACCOUNT_CLIENT";

    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let set = |name: &str| env.get(name).is_some_and(|v| !v.trim().is_empty());
        let per_account_client = if set(Self::LEGACY) {
            if set(Self::PER_ACCOUNT_CLIENT) {
                return Err(ConfigError::new(
                    Self::LEGACY,
                    &env.get(Self::LEGACY).unwrap_or_default(),
                    format!(
                        "replaced by {}: set only that one",
                        Self::PER_ACCOUNT_CLIENT
                    ),
                ));
            }
            tracing::warn!(
                "{} is deprecated: it now means failed logins per account per client \
                 per minute; rename it {}",
                Self::LEGACY,
                Self::PER_ACCOUNT_CLIENT
            );
            ranged_or(env, Self::LEGACY, 10, 1..=100_000)?
        } else {
            ranged_or(env, Self::PER_ACCOUNT_CLIENT, 10, 1..=100_000)?
        };
        Ok(Self {
            per_account_client,
            per_client: ranged_or(env, "LOGIN_FAILURES_PER_CLIENT", 30, 1..=1_000_000)?,
            window: seconds_or(env, "LOGIN_FAILURE_WINDOW_SECONDS", 60, 1)?,
            per_account: ranged_or(env, "LOGIN_FAILURES_PER_ACCOUNT", 100, 1..=1_000_000)?,
            account_window: seconds_or(env, "LOGIN_ACCOUNT_WINDOW_SECONDS", 3600, 1)?,
            device_ttl: seconds_or(env, "LOGIN_DEVICE_TTL_SECONDS", 30 * 86_400, 1)?,
        })
    }
}

/// `TRUSTED_PROXIES` / `TRUSTED_PROXY_HOPS`, refusing the variable they replaced.
fn trusted_proxies(env: &dyn EnvSource) -> Result<TrustedProxies, ConfigError> {
    refuse_retired(
        env,
        "TRUST_FORWARDED_FOR",
        "use TRUSTED_PROXIES (the gateway's addresses or CIDRs, e.g. 127.0.0.1/32) or \
         TRUSTED_PROXY_HOPS instead",
    )?;
    TrustedProxies::from_env(env)
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
    pub login: LoginLimits,
    /// `TRUSTED_PROXIES` / `TRUSTED_PROXY_HOPS` (default: nothing trusted): which peers'
    /// `X-Forwarded-For` entries name the client (the gateway, the mesh sidecar).
    /// `TRUST_FORWARDED_FOR` is refused.
    pub trusted_proxies: TrustedProxies,
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
        let master_key = match env.get("JWT_MASTER_KEY").filter(|v| !v.is_empty()) {
            None => {
                Environment::from_env(env)?.dev_secret(
                    "JWT_MASTER_KEY",
                    "private signing keys are sealed with a key anyone can read in this code",
                )?;
                DEV_MASTER_KEY
            }
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
                key
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
        let auth = auth::AuthSettings::from_env(env)?;
        // Every verifier refuses tokens living longer than its maximum: issuing them would
        // lock every member out, so say so at startup instead.
        if access_ttl > auth.max_lifetime {
            return Err(ConfigError::new(
                "ACCESS_TOKEN_TTL_SECONDS",
                &access_ttl.as_secs().to_string(),
                format!(
                    "must not exceed JWT_MAX_LIFETIME_SECONDS ({}), which every verifier enforces",
                    auth.max_lifetime.as_secs()
                ),
            ));
        }
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            database: PostgresSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            auth,
            tokens: TokenSettings {
                access_ttl,
                refresh_ttl: seconds_or(env, "REFRESH_TOKEN_TTL_SECONDS", 7 * 86_400, 1)?,
                family_lifetime: seconds_or(env, "REFRESH_FAMILY_MAX_SECONDS", 30 * 86_400, 1)?,
                rotation: seconds_or(env, "JWT_KEY_ROTATION_SECONDS", 3600, 1)?,
                master_key,
                cookie_secure: parse_or(env, "REFRESH_COOKIE_SECURE", true)?,
                reuse_grace: Duration::from_secs(ranged_or(
                    env,
                    "REFRESH_REUSE_GRACE_SECONDS",
                    10,
                    0..=60,
                )?),
            },
            password: HashParams {
                memory_kib: ranged_or(env, "ARGON2_MEMORY_KIB", 19_456, 8..=4_194_304)?,
                iterations: ranged_or(env, "ARGON2_ITERATIONS", 2, 1..=100)?,
                parallelism: ranged_or(env, "ARGON2_PARALLELISM", 1, 1..=64)?,
            },
            login: LoginLimits::from_env(env)?,
            trusted_proxies: trusted_proxies(env)?,
            public_url,
            oauth,
            cursor: CursorCodec::from_env(env)?,
            service_peers: auth::ServicePeers::from_env(env, SERVICE)?,
            admin: auth::AdminGuard::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_removed_trust_forwarded_for_stops_startup_pointing_at_trusted_proxies() {
        for value in ["true", "false"] {
            let err = Config::from_env(&env(&[("TRUST_FORWARDED_FOR", value)])).unwrap_err();
            assert_eq!(err.var, "TRUST_FORWARDED_FOR");
            assert!(err.reason.contains("TRUSTED_PROXIES"), "{err}");
        }
        let config = Config::from_env(&env(&[("TRUSTED_PROXIES", "127.0.0.1/32")])).unwrap();
        assert!(
            config
                .trusted_proxies
                .is_trusted("127.0.0.1".parse().unwrap())
        );
        assert!(
            !Config::from_env(&env(&[]))
                .unwrap()
                .trusted_proxies
                .trusts_any()
        );
    }

    #[test]
    fn login_limits_default_to_the_documented_values_and_the_old_name_still_works() {
        let limits = LoginLimits::from_env(&env(&[])).unwrap();
        assert_eq!(
            (
                limits.per_account_client,
                limits.per_client,
                limits.per_account
            ),
            (10, 30, 100)
        );
        assert_eq!(limits.window, Duration::from_secs(60));
        assert_eq!(limits.account_window, Duration::from_secs(3600));
        let legacy = LoginLimits::from_env(&env(&[("LOGIN_ATTEMPTS_PER_MINUTE", "7")])).unwrap();
        assert_eq!(legacy.per_account_client, 7);
        let both = LoginLimits::from_env(&env(&[
            ("LOGIN_ATTEMPTS_PER_MINUTE", "7"),
            ("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "8"),
        ]))
        .unwrap_err();
        assert_eq!(both.var, "LOGIN_ATTEMPTS_PER_MINUTE");
        let bad = LoginLimits::from_env(&env(&[("LOGIN_FAILURES_PER_CLIENT", "0")])).unwrap_err();
        assert_eq!(bad.var, "LOGIN_FAILURES_PER_CLIENT");
    }

    #[test]
    fn the_refresh_grace_window_is_bounded() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert_eq!(config.tokens.reuse_grace, Duration::from_secs(10));
        let err = Config::from_env(&env(&[("REFRESH_REUSE_GRACE_SECONDS", "3600")])).unwrap_err();
        assert_eq!(err.var, "REFRESH_REUSE_GRACE_SECONDS");
    }
}
