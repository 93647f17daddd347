//! One configuration vocabulary for every service, read from environment variables. Every
//! variable has a default that runs locally; a malformed value fails startup with an error
//! naming the variable.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use telemetry::{LogFormat, TelemetryConfig};

/// Where variables come from: the process environment, or a map in tests.
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// A variable whose value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {var}: `{value}` ({reason})")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &str, value: &str, reason: impl Display) -> Self {
        Self {
            var: var.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// `name` parsed as `T`, or `default` when unset or empty.
pub fn parse_or<T>(env: &dyn EnvSource, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match env.get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(name, &raw, e)),
    }
}

/// `name` parsed as `T`, or `None` when unset or empty.
pub fn parse_optional<T>(env: &dyn EnvSource, name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match env.get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| ConfigError::new(name, &raw, e)),
    }
}

/// `name` as a string, or `default` when unset.
pub fn string_or(env: &dyn EnvSource, name: &str, default: &str) -> String {
    env.get(name).unwrap_or_else(|| default.to_owned())
}

/// A whole number of seconds, at least `min`.
pub fn seconds_or(
    env: &dyn EnvSource,
    name: &str,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    let secs: u64 = parse_or(env, name, default)?;
    if secs < min {
        return Err(ConfigError::new(
            name,
            &secs.to_string(),
            format!("must be at least {min}"),
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// A number in `range`.
pub fn ranged_or<T>(
    env: &dyn EnvSource,
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display + Copy,
    T::Err: Display,
{
    let value = parse_or(env, name, default)?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            name,
            &value.to_string(),
            format!("must be between {} and {}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

/// A URL with one of the allowed schemes.
pub fn url_or(
    env: &dyn EnvSource,
    name: &str,
    default: &str,
    schemes: &[&str],
) -> Result<url::Url, ConfigError> {
    let raw = env
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let url = url::Url::parse(raw.trim()).map_err(|e| ConfigError::new(name, &raw, e))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::new(
            name,
            &raw,
            format!("scheme must be one of {}", schemes.join(", ")),
        ));
    }
    Ok(url)
}

/// Fails when a variable that no longer does anything is still set, naming what replaced it:
/// a security setting silently ignored is worse than a service that will not start.
pub fn refuse_retired(env: &dyn EnvSource, name: &str, instead: &str) -> Result<(), ConfigError> {
    match env.get(name) {
        Some(value) if !value.trim().is_empty() => Err(ConfigError::new(
            name,
            &value,
            format!("no longer read: {instead}"),
        )),
        _ => Ok(()),
    }
}

/// `DAILYFEED_ENV`: where a service runs. Only `production` changes behaviour: a secret
/// left at its development default (or a random per-process one) stops startup instead of
/// logging a warning. The Helm chart sets it; nothing else needs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

impl Environment {
    pub const VAR: &'static str = "DAILYFEED_ENV";

    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        match env.get(Self::VAR).as_deref().map(str::trim) {
            None | Some("") | Some("development") => Ok(Self::Development),
            Some("production") => Ok(Self::Production),
            Some(other) => Err(ConfigError::new(
                Self::VAR,
                other,
                "must be `development` or `production`",
            )),
        }
    }

    pub fn is_production(self) -> bool {
        self == Self::Production
    }

    /// `var` was not set, so a development default stands in for a secret: refused in
    /// production (startup fails naming `var`), a warning otherwise. `why` says what the
    /// default means, e.g. "anyone can sign cursors".
    pub fn dev_secret(self, var: &str, why: &str) -> Result<(), ConfigError> {
        if self.is_production() {
            return Err(ConfigError::new(
                var,
                "<unset>",
                format!("must be set when {}=production: {why}", Self::VAR),
            ));
        }
        tracing::warn!(
            var,
            "{var} is not set: using a development default ({why}); set it in production"
        );
        Ok(())
    }
}

/// The seven services, their default ports and env-name prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceName {
    Queue,
    Member,
    Content,
    Timeline,
    Image,
    Search,
    Activity,
}

impl ServiceName {
    pub const ALL: [ServiceName; 7] = [
        ServiceName::Queue,
        ServiceName::Member,
        ServiceName::Content,
        ServiceName::Timeline,
        ServiceName::Image,
        ServiceName::Search,
        ServiceName::Activity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Queue => "queue",
            ServiceName::Member => "member",
            ServiceName::Content => "content",
            ServiceName::Timeline => "timeline",
            ServiceName::Image => "image",
            ServiceName::Search => "search",
            ServiceName::Activity => "activity",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ServiceName::Queue => 8080,
            ServiceName::Member => 8081,
            ServiceName::Content => 8082,
            ServiceName::Timeline => 8083,
            ServiceName::Image => 8084,
            ServiceName::Search => 8085,
            ServiceName::Activity => 8086,
        }
    }

    /// The service called `name` (as [`Self::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The variable naming this service's base URL for its peers, e.g. `MEMBER_URL`.
    pub fn url_var(self) -> String {
        format!("{}_URL", self.as_str().to_ascii_uppercase())
    }

    /// The database this service owns by default, e.g. `dailyfeed_member`.
    pub fn default_database(self) -> String {
        format!("dailyfeed_{}", self.as_str())
    }

    /// Where a peer calls this service, from `<SERVICE>_URL` (default: loopback + its port).
    pub fn peer_url(self, env: &dyn EnvSource) -> Result<url::Url, ConfigError> {
        let default = format!("http://127.0.0.1:{}", self.default_port());
        url_or(env, &self.url_var(), &default, &["http", "https"])
    }
}

impl Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `SERVER_HOST` (default `0.0.0.0`).
    pub host: IpAddr,
    /// `SERVER_PORT` (default: the service's port; `0` picks a free one).
    pub port: u16,
    /// `SERVER_WORKERS` (default: number of CPUs).
    pub workers: usize,
    /// `SHUTDOWN_TIMEOUT_SECONDS` (default 8): how long in-flight requests may drain.
    pub shutdown_timeout: Duration,
    /// `HTTP_MAX_BODY_BYTES` (default 1 MiB): JSON bodies above it get 413.
    pub max_body_bytes: usize,
}

impl HttpSettings {
    pub fn from_env(env: &dyn EnvSource, service: ServiceName) -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Self {
            host: parse_or(env, "SERVER_HOST", IpAddr::from([0, 0, 0, 0]))?,
            port: parse_or(env, "SERVER_PORT", service.default_port())?,
            workers: ranged_or(env, "SERVER_WORKERS", cpus, 1..=256)?,
            shutdown_timeout: seconds_or(env, "SHUTDOWN_TIMEOUT_SECONDS", 8, 0)?,
            max_body_bytes: ranged_or(env, "HTTP_MAX_BODY_BYTES", 1 << 20, 1024..=(64 << 20))?,
        })
    }
}

/// Logs and traces: `LOG_LEVEL` (or `RUST_LOG`), `LOG_FORMAT`, `TRACE_LEVEL`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`.
pub fn telemetry_from_env(
    env: &dyn EnvSource,
    service: ServiceName,
) -> Result<TelemetryConfig, ConfigError> {
    let log_filter = env
        .get("RUST_LOG")
        .or_else(|| env.get("LOG_LEVEL"))
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "info".to_owned());
    let otlp_endpoint = match env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(raw) if !raw.trim().is_empty() => {
            url::Url::parse(raw.trim())
                .map_err(|e| ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", &raw, e))?;
            Some(raw.trim().to_owned())
        }
        _ => None,
    };
    Ok(TelemetryConfig {
        service_name: string_or(env, "OTEL_SERVICE_NAME", service.as_str()),
        log_filter,
        trace_filter: string_or(env, "TRACE_LEVEL", "info"),
        log_format: parse_or(env, "LOG_FORMAT", LogFormat::Json)?,
        otlp_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_harness::vars as env;

    #[test]
    fn defaults_run_locally_with_nothing_set() {
        let http = HttpSettings::from_env(&env(&[]), ServiceName::Timeline).expect("defaults");
        assert_eq!(http.port, 8083);
        assert_eq!(http.shutdown_timeout, Duration::from_secs(8));
        let member = ServiceName::Member
            .peer_url(&env(&[]))
            .expect("default url");
        assert_eq!(member.as_str(), "http://127.0.0.1:8081/");
    }

    #[test]
    fn a_malformed_value_names_the_variable() {
        let err = HttpSettings::from_env(&env(&[("SERVER_PORT", "eighty")]), ServiceName::Queue)
            .expect_err("must fail");
        assert_eq!(err.var, "SERVER_PORT");
        assert!(err.to_string().contains("SERVER_PORT"), "{err}");
        let err = ServiceName::Member
            .peer_url(&env(&[("MEMBER_URL", "ftp://x")]))
            .expect_err("must fail");
        assert_eq!(err.var, "MEMBER_URL");
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let err = HttpSettings::from_env(&env(&[("SERVER_WORKERS", "0")]), ServiceName::Queue)
            .expect_err("must fail");
        assert_eq!(err.var, "SERVER_WORKERS");
    }

    #[test]
    fn empty_values_mean_default() {
        let http = HttpSettings::from_env(&env(&[("SERVER_PORT", " ")]), ServiceName::Search)
            .expect("default");
        assert_eq!(http.port, 8085);
    }

    #[test]
    fn production_refuses_development_secrets_and_development_allows_them() {
        assert_eq!(
            Environment::from_env(&env(&[])).expect("default"),
            Environment::Development
        );
        let prod = Environment::from_env(&env(&[("DAILYFEED_ENV", "production")])).expect("valid");
        let err = prod.dev_secret("JWT_MASTER_KEY", "x").expect_err("refused");
        assert_eq!(err.var, "JWT_MASTER_KEY");
        assert!(
            err.to_string().contains("DAILYFEED_ENV=production"),
            "{err}"
        );
        assert!(
            Environment::Development
                .dev_secret("JWT_MASTER_KEY", "x")
                .is_ok()
        );
        let err = Environment::from_env(&env(&[("DAILYFEED_ENV", "prod")])).expect_err("typo");
        assert_eq!(err.var, "DAILYFEED_ENV");
    }

    #[test]
    fn telemetry_reads_format_and_endpoint() {
        let t = telemetry_from_env(
            &env(&[
                ("LOG_FORMAT", "pretty"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ]),
            ServiceName::Image,
        )
        .expect("valid");
        assert_eq!(t.log_format, LogFormat::Pretty);
        assert_eq!(t.otlp_endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(t.service_name, "image");
        let err = telemetry_from_env(&env(&[("LOG_FORMAT", "xml")]), ServiceName::Image)
            .expect_err("must fail");
        assert_eq!(err.var, "LOG_FORMAT");
    }
}
