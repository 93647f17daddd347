//! queue's configuration: the shared env vocabulary (see README "Configuration") plus the
//! gateway's table and rules and the waiting room's numbers. Everything has a local default;
//! a malformed value stops startup naming its variable.

use std::time::Duration;

use std::collections::HashMap;

use auth::AuthSettings;
use resilience::{BreakerSettings, ClientSettings, Tier};
use service_runtime::config::{parse_optional, ranged_or, refuse_retired, string_or};
use service_runtime::redis::RedisSettings;
use service_runtime::{
    ConfigError, EnvSource, Environment, HttpSettings, ServiceName, TrustedProxies,
};

use crate::SERVICE;
use crate::domain::admission::AdmissionKey;
use crate::domain::limits::{DEFAULT_RULES, LimitRule};
use crate::domain::paths::PathRule;
use crate::domain::routes::{DEFAULT_ROUTES, Route, RouteSpec, RouteTable};

/// The seed's public paths (SecurityConfig `permitAll`): sign-in and sign-up, token
/// refresh, the email check, the OAuth redirect and callback, and reading posts. Health,
/// metrics and docs are the gateway's own paths and need no token anyway.
pub const DEFAULT_PUBLIC_PATHS: &str = "POST /api/v1/auth/login, POST /api/v1/auth/register, \
POST /api/v1/auth/refresh, GET /api/v1/auth/check-email, GET /api/v1/auth/oauth/*, \
GET /api/v1/auth/oauth/*/callback, GET /api/v1/posts, GET /api/v1/posts/**, \
GET /api/v1/search/**, GET /api/v1/images/**, GET /api/v1/queue/jwks.json";

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub gateway: GatewaySettings,
    pub room: WaitingRoomSettings,
    /// `ADMIN_ALLOWED_CIDRS` (and the client-IP rules): where `/admin/**` may be called from.
    pub admin: auth::AdminGuard,
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `GATEWAY_ROUTES`: `PREFIX=SERVICE|URL, …` (service URLs from `<SERVICE>_URL`).
    pub routes: RouteTable,
    /// `GATEWAY_PUBLIC_PATHS`: `[METHOD ]PATTERN, …` reachable without a token.
    pub public_paths: Vec<PathRule>,
    /// `GATEWAY_RATE_LIMITS`: `[METHOD ]PATTERN=MAX/WINDOW@ip|member, …` (empty: off).
    pub rate_limits: Vec<LimitRule>,
    /// `TRUSTED_PROXIES` / `TRUSTED_PROXY_HOPS` (default: none, the peer is the client): the
    /// proxies in front whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: TrustedProxies,
    /// `GATEWAY_POOL_IDLE_PER_HOST` (default 256): idle keep-alive connections per service.
    pub pool_idle_per_host: usize,
    /// A circuit breaker per route id, from the resilience vocabulary
    /// (`<SERVICE>_CLIENT_CB_*`, tier presets as for every other caller of that service).
    pub breakers: HashMap<String, BreakerSettings>,
}

#[derive(Debug, Clone)]
pub struct WaitingRoomSettings {
    /// `ALLOWED_IN_MAX_CAPACITY` (default 100).
    pub capacity: u32,
    /// `ALLOWED_IN_DURATION_SECONDS` (default 240): an admission idle this long expires.
    pub duration: Duration,
    /// `QUEUE_PROTECTED_ROUTES` (default none): `[METHOD ]PATTERN, …` only admitted members
    /// may call.
    pub protected_routes: Vec<PathRule>,
    /// `QUEUE_SCHEDULER_INTERVAL_MS` (default 1000).
    pub scheduler_interval: Duration,
    /// `QUEUE_SSE_POSITION_INTERVAL_MS` (default 10000).
    pub position_interval: Duration,
    /// `QUEUE_SSE_HEARTBEAT_INTERVAL_MS` (default 30000).
    pub heartbeat_interval: Duration,
    /// `QUEUE_STREAM_PORT` (default unset: off; `0` picks a free port): a lean listener
    /// serving `GET /api/v1/queue/stream` alone, for many long-held streams per replica.
    pub stream_port: Option<u16>,
    /// `QUEUE_ABANDON_AFTER_SECONDS` (default 60): a waiting member with neither an SSE
    /// stream nor a status poll for this long is dropped.
    pub abandon_after: Duration,
    /// `QUEUE_RATE_WINDOW_SECONDS` (default 300): admissions counted for the wait estimate.
    pub rate_window: Duration,
    /// `QUEUE_ADMISSION_TOKEN_TTL_SECONDS` (default 60).
    pub admission_token_ttl: Duration,
    /// `QUEUE_ADMISSION_KEY`: base64url Ed25519 seed shared by all replicas (default: a
    /// random key per process, logged as a warning).
    pub admission_key: AdmissionKey,
    pub admission_key_is_random: bool,
}

fn millis_or(
    env: &dyn EnvSource,
    name: &str,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(ranged_or(
        env,
        name,
        default,
        min..=86_400_000,
    )?))
}

fn seconds_in(
    env: &dyn EnvSource,
    name: &str,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(ranged_or(
        env,
        name,
        default,
        min..=31_536_000,
    )?))
}

fn service_named(name: &str) -> Option<ServiceName> {
    ServiceName::ALL
        .into_iter()
        .find(|s| s.as_str() == name && *s != ServiceName::Queue)
}

fn route_table(env: &dyn EnvSource) -> Result<RouteTable, ConfigError> {
    const VAR: &str = "GATEWAY_ROUTES";
    let raw = string_or(env, VAR, DEFAULT_ROUTES);
    let specs = RouteSpec::parse_list(&raw).map_err(|e| ConfigError::new(VAR, &raw, e))?;
    let default_timeout = millis_or(env, "GATEWAY_TIMEOUT_MS", 3000, 10)?;
    let mut routes = Vec::with_capacity(specs.len());
    for spec in specs {
        let (id, uri, timeout) = match service_named(&spec.target) {
            Some(service) => {
                let var = format!(
                    "GATEWAY_{}_TIMEOUT_MS",
                    service.as_str().to_ascii_uppercase()
                );
                // Seed 003's VirtualService: image gets 10 s per try, the others 3 s.
                let default = if service == ServiceName::Image {
                    default_timeout.max(Duration::from_secs(10))
                } else {
                    default_timeout
                };
                let millis = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
                (
                    service.as_str().to_owned(),
                    service.peer_url(env)?,
                    millis_or(env, &var, millis, 10)?,
                )
            }
            None => {
                let uri = url::Url::parse(&spec.target)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        ConfigError::new(
                            VAR,
                            &raw,
                            format!("`{}` is neither a service nor an http(s) URL", spec.target),
                        )
                    })?;
                ("custom".to_owned(), uri, default_timeout)
            }
        };
        routes.push(Route {
            id,
            prefix: spec.prefix,
            uri,
            timeout,
        });
    }
    Ok(RouteTable::new(routes))
}

fn path_rules(env: &dyn EnvSource, var: &str, default: &str) -> Result<Vec<PathRule>, ConfigError> {
    let raw = string_or(env, var, default);
    PathRule::parse_list(&raw).map_err(|e| ConfigError::new(var, &raw, e))
}

impl GatewaySettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let limits_raw = string_or(env, "GATEWAY_RATE_LIMITS", DEFAULT_RULES);
        let routes = route_table(env)?;
        let mut breakers = HashMap::new();
        for route in routes.routes() {
            if !breakers.contains_key(&route.id) {
                let tier = Tier::for_downstream(&route.id);
                let settings = ClientSettings::from_env(env, &route.id, tier)?;
                breakers.insert(route.id.clone(), settings.breaker);
            }
        }
        Ok(Self {
            routes,
            breakers,
            public_paths: path_rules(env, "GATEWAY_PUBLIC_PATHS", DEFAULT_PUBLIC_PATHS)?,
            rate_limits: LimitRule::parse_list(&limits_raw)
                .map_err(|e| ConfigError::new("GATEWAY_RATE_LIMITS", &limits_raw, e))?,
            trusted_proxies: {
                refuse_retired(
                    env,
                    "GATEWAY_TRUST_FORWARDED_FOR",
                    "list the proxies in front in TRUSTED_PROXIES (CIDRs) or TRUSTED_PROXY_HOPS",
                )?;
                TrustedProxies::from_env(env)?
            },
            pool_idle_per_host: ranged_or(env, "GATEWAY_POOL_IDLE_PER_HOST", 256, 0..=65_536)?,
        })
    }
}

impl WaitingRoomSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let position_interval = millis_or(env, "QUEUE_SSE_POSITION_INTERVAL_MS", 10_000, 10)?;
        let abandon_after = seconds_in(env, "QUEUE_ABANDON_AFTER_SECONDS", 60, 1)?;
        if abandon_after <= position_interval {
            return Err(ConfigError::new(
                "QUEUE_ABANDON_AFTER_SECONDS",
                &abandon_after.as_secs().to_string(),
                "must be longer than QUEUE_SSE_POSITION_INTERVAL_MS, or connected members would be dropped",
            ));
        }
        let (admission_key, admission_key_is_random) = match env
            .get("QUEUE_ADMISSION_KEY")
            .filter(|v| !v.trim().is_empty())
        {
            Some(raw) => (
                AdmissionKey::parse(&raw)
                    .map_err(|e| ConfigError::new("QUEUE_ADMISSION_KEY", "<redacted>", e))?,
                false,
            ),
            None => {
                Environment::from_env(env)?.dev_secret(
                    "QUEUE_ADMISSION_KEY",
                    "admission tokens are signed with a random key of this process only, which other replicas refuse",
                )?;
                (AdmissionKey::random(), true)
            }
        };
        Ok(Self {
            capacity: ranged_or(env, "ALLOWED_IN_MAX_CAPACITY", 100, 1..=1_000_000)?,
            duration: seconds_in(env, "ALLOWED_IN_DURATION_SECONDS", 240, 1)?,
            protected_routes: path_rules(env, "QUEUE_PROTECTED_ROUTES", "")?,
            scheduler_interval: millis_or(env, "QUEUE_SCHEDULER_INTERVAL_MS", 1000, 10)?,
            position_interval,
            heartbeat_interval: millis_or(env, "QUEUE_SSE_HEARTBEAT_INTERVAL_MS", 30_000, 10)?,
            stream_port: parse_optional(env, "QUEUE_STREAM_PORT")?,
            abandon_after,
            rate_window: seconds_in(env, "QUEUE_RATE_WINDOW_SECONDS", 300, 1)?,
            admission_token_ttl: seconds_in(env, "QUEUE_ADMISSION_TOKEN_TTL_SECONDS", 60, 1)?,
            admission_key,
            admission_key_is_random,
        })
    }
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            auth: AuthSettings::from_env(env)?,
            gateway: GatewaySettings::from_env(env)?,
            room: WaitingRoomSettings::from_env(env)?,
            admin: auth::AdminGuard::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use test_harness::vars as env;

    #[test]
    fn defaults_are_the_seeds() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert_eq!(config.room.capacity, 100);
        assert_eq!(config.room.duration, Duration::from_secs(240));
        assert_eq!(config.room.position_interval, Duration::from_secs(10));
        assert_eq!(config.room.heartbeat_interval, Duration::from_secs(30));
        assert!(config.room.admission_key_is_random);
        let posts = config.gateway.routes.find("/api/v1/posts/1").unwrap();
        assert_eq!(posts.uri.as_str(), "http://127.0.0.1:8082/");
        assert_eq!(posts.timeout, Duration::from_secs(3));
        let images = config.gateway.routes.find("/api/v1/images").unwrap();
        assert_eq!(images.timeout, Duration::from_secs(10));
        assert_eq!(config.gateway.routes.routes().len(), 8);
    }

    #[test]
    fn routes_may_target_services_or_urls_with_per_service_timeouts() {
        let config = GatewaySettings::from_env(&env(&[
            (
                "GATEWAY_ROUTES",
                "/api/v1/posts=content,/api/v1/x=http://10.0.0.1:9000",
            ),
            ("CONTENT_URL", "http://content:8082"),
            ("GATEWAY_CONTENT_TIMEOUT_MS", "750"),
        ]))
        .unwrap();
        let posts = config.routes.find("/api/v1/posts").unwrap();
        assert_eq!(
            (posts.uri.as_str(), posts.timeout),
            ("http://content:8082/", Duration::from_millis(750))
        );
        assert_eq!(config.routes.find("/api/v1/x/y").unwrap().id, "custom");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("GATEWAY_ROUTES", "/api/v1/x=ftp://nope"),
            ("GATEWAY_ROUTES", "/other=member"),
            ("GATEWAY_RATE_LIMITS", "/api/v1/**=ten/60s@ip"),
            ("GATEWAY_PUBLIC_PATHS", "api/no-slash"),
            ("QUEUE_PROTECTED_ROUTES", "/a/**/b"),
            ("ALLOWED_IN_MAX_CAPACITY", "0"),
            ("QUEUE_ADMISSION_KEY", "short"),
            ("QUEUE_ABANDON_AFTER_SECONDS", "5"),
            ("GATEWAY_TRUST_FORWARDED_FOR", "true"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ] {
            let err = Config::from_env(&env(&[(var, value)])).expect_err(var);
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn the_admission_key_never_appears_in_errors_or_debug_output() {
        let err = Config::from_env(&env(&[("QUEUE_ADMISSION_KEY", "c2VjcmV0")])).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"));
        let config = Config::from_env(&env(&[])).unwrap();
        assert!(format!("{config:?}").contains("<redacted>"));
    }
}
