//! content's configuration: the shared env vocabulary (see README "Configuration").

use service_runtime::kafka::KafkaSettings;
use service_runtime::postgres::PostgresSettings;
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, HttpSettings};

use crate::SERVICE;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub database: PostgresSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
}

impl Config {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpSettings::from_env(env, SERVICE)?,
            database: PostgresSettings::from_env(env, SERVICE)?,
            redis: RedisSettings::from_env(env)?,
            kafka: KafkaSettings::from_env(env, SERVICE)?,
        })
    }
}
