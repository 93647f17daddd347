//! image's configuration: the shared env vocabulary plus the variables below (README
//! "Configuration", docs/image.md "Limits and configuration").

use std::path::PathBuf;
use std::time::Duration;

use events::EventsConfig;
use secrecy::SecretString;
use service_runtime::config::{parse_optional, ranged_or, string_or, url_or};
use service_runtime::postgres::PostgresSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings};

use crate::SERVICE;
use crate::domain::ProcessingLimits;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub database: PostgresSettings,
    pub redis: RedisSettings,
    pub events: EventsConfig,
    pub auth: auth::AuthSettings,
    pub store: StoreSettings,
    pub limits: UploadLimits,
    pub processing: ProcessingLimits,
    /// `IMAGE_CACHE_MAX_AGE_SECONDS` (default 31 536 000 = one year): `max-age` of image
    /// answers. The bytes under an id never change, so they are also `immutable`.
    pub cache_max_age: Duration,
    /// `ADMIN_ALLOWED_CIDRS`: where `/admin/**` may be called from (auth::AdminGuard).
    pub admin: auth::AdminGuard,
}

/// What one upload may cost.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    /// `IMAGE_MAX_BYTES` (default 10 MiB): larger uploads get 413.
    pub max_bytes: usize,
    /// `IMAGE_UPLOADS_PER_MINUTE` (default 30): uploads (POST and PUT) per member per minute,
    /// across replicas (Redis); more get 429 with `Retry-After`.
    pub per_minute: u32,
    /// `IMAGE_DECODE_CONCURRENCY` (default: number of CPUs): images decoded at once, each on
    /// a blocking thread, so a burst of uploads cannot take every core from other requests.
    pub decode_concurrency: usize,
    /// `IMAGE_DECODE_WAIT_SECONDS` (default 10): how long an upload waits for a decode slot
    /// before it gets 503 with `Retry-After`.
    pub decode_wait: Duration,
}

/// `IMAGE_STORE`: where the bytes go.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// `fs` (the default): `IMAGE_FS_ROOT` (default `data/images`, created if missing).
    Filesystem { root: PathBuf },
    /// `s3`: an S3-API bucket.
    S3(S3Settings),
}

#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `S3_BUCKET` (default `dailyfeed-images`); it must exist.
    pub bucket: String,
    /// `S3_REGION` (default `us-east-1`).
    pub region: String,
    /// `S3_ENDPOINT` (default: AWS): MinIO, moto or another S3-API server, path-style.
    pub endpoint: Option<url::Url>,
    /// `S3_ALLOW_HTTP` (default: true when `S3_ENDPOINT` is `http://`).
    pub allow_http: bool,
    /// `S3_ACCESS_KEY_ID` and `S3_SECRET_ACCESS_KEY` (default: none: unsigned requests to a
    /// custom endpoint, the instance role on AWS; set both for MinIO or keyed S3).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let thumbnail_px = ranged_or(env, "IMAGE_THUMBNAIL_PX", 256, 16..=2048)?;
        let medium_px = ranged_or(env, "IMAGE_MEDIUM_PX", 1024, 16..=8192)?;
        if medium_px < thumbnail_px {
            return Err(ConfigError::new(
                "IMAGE_MEDIUM_PX",
                &medium_px.to_string(),
                format!("must be at least IMAGE_THUMBNAIL_PX ({thumbnail_px})"),
            ));
        }
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            database: PostgresSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            events: EventsConfig::from_env(env, SERVICE)?,
            auth: auth::AuthSettings::from_env(env)?,
            admin: auth::AdminGuard::from_env(env)?,
            store: StoreSettings::from_env(env)?,
            limits: UploadLimits {
                max_bytes: ranged_or(env, "IMAGE_MAX_BYTES", 10 << 20, 1024..=(200 << 20))?,
                per_minute: ranged_or(env, "IMAGE_UPLOADS_PER_MINUTE", 30, 1..=1_000_000)?,
                decode_concurrency: ranged_or(env, "IMAGE_DECODE_CONCURRENCY", cpus, 1..=256)?,
                decode_wait: Duration::from_secs(ranged_or(
                    env,
                    "IMAGE_DECODE_WAIT_SECONDS",
                    10,
                    1..=300,
                )?),
            },
            processing: ProcessingLimits {
                max_dimension: ranged_or(env, "IMAGE_MAX_DIMENSION", 10_000, 16..=65_535)?,
                max_pixels: ranged_or(env, "IMAGE_MAX_PIXELS", 25_000_000, 256..=1_000_000_000)?,
                thumbnail_px,
                medium_px,
                thumbnail_quality: ranged_or(env, "IMAGE_THUMBNAIL_QUALITY", 80, 1..=100)?,
                original_quality: ranged_or(env, "IMAGE_ORIGINAL_QUALITY", 90, 1..=100)?,
            },
            cache_max_age: Duration::from_secs(ranged_or(
                env,
                "IMAGE_CACHE_MAX_AGE_SECONDS",
                31_536_000,
                0..=31_536_000,
            )?),
        })
    }
}

impl StoreSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let kind = string_or(env, "IMAGE_STORE", "fs");
        match kind.trim() {
            "" | "fs" => Ok(StoreSettings::Filesystem {
                root: PathBuf::from(string_or(env, "IMAGE_FS_ROOT", "data/images")),
            }),
            "s3" => {
                let endpoint = match env.get("S3_ENDPOINT").filter(|v| !v.trim().is_empty()) {
                    Some(_) => Some(url_or(env, "S3_ENDPOINT", "", &["http", "https"])?),
                    None => None,
                };
                let plain_http = endpoint.as_ref().is_some_and(|u| u.scheme() == "http");
                let bucket = string_or(env, "S3_BUCKET", "dailyfeed-images");
                if bucket.trim().is_empty() {
                    return Err(ConfigError::new("S3_BUCKET", &bucket, "must not be empty"));
                }
                let access_key_id = env.get("S3_ACCESS_KEY_ID").filter(|v| !v.is_empty());
                let secret = env.get("S3_SECRET_ACCESS_KEY").filter(|v| !v.is_empty());
                if access_key_id.is_some() != secret.is_some() {
                    return Err(ConfigError::new(
                        "S3_SECRET_ACCESS_KEY",
                        "(hidden)",
                        "set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither",
                    ));
                }
                Ok(StoreSettings::S3(S3Settings {
                    bucket,
                    region: string_or(env, "S3_REGION", "us-east-1"),
                    allow_http: parse_optional(env, "S3_ALLOW_HTTP")?.unwrap_or(plain_http),
                    endpoint,
                    access_key_id,
                    secret_access_key: secret.map(SecretString::from),
                }))
            }
            other => Err(ConfigError::new("IMAGE_STORE", other, "must be fs or s3")),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use test_harness::vars as env;

    #[test]
    fn runs_locally_with_nothing_set() {
        let config = Config::from_env(&env(&[])).expect("defaults");
        assert!(matches!(config.store, StoreSettings::Filesystem { .. }));
        assert_eq!(config.limits.max_bytes, 10 << 20);
        assert_eq!(config.processing.thumbnail_px, 256);
    }

    #[test]
    fn s3_over_http_is_allowed_for_an_http_endpoint() {
        let config = Config::from_env(&env(&[
            ("IMAGE_STORE", "s3"),
            ("S3_ENDPOINT", "http://127.0.0.1:19000"),
            ("S3_BUCKET", "b"),
        ]))
        .expect("valid");
        let StoreSettings::S3(s3) = config.store else {
            panic!("s3 expected");
        };
        assert!(s3.allow_http);
        assert_eq!(s3.bucket, "b");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("IMAGE_STORE", "ftp"),
            ("IMAGE_MAX_BYTES", "ten"),
            ("IMAGE_MEDIUM_PX", "100"),
            ("S3_ACCESS_KEY_ID", "only-half"),
        ] {
            let mut vars = env(&[("IMAGE_STORE", "s3"), (var, value)]);
            if var == "IMAGE_STORE" {
                vars.insert(var.into(), value.into());
            }
            let err = Config::from_env(&vars).expect_err(var);
            let named = if var == "S3_ACCESS_KEY_ID" {
                "S3_SECRET_ACCESS_KEY"
            } else {
                var
            };
            assert_eq!(err.var, named, "{err}");
        }
    }
}
