//! Redis: `REDIS_URL`, `REDIS_POOL_SIZE`, `REDIS_KEY_PREFIX` (isolates tests and tenants
//! sharing one Redis), a deadpool pool that connects on demand, and its probe.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Config, Pool, Runtime, Timeouts};

use crate::config::{ConfigError, EnvSource, ranged_or, string_or};
use crate::health::Probe;

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL` (default `redis://127.0.0.1:6379`).
    pub url: String,
    /// `REDIS_POOL_SIZE` (default 16).
    pub pool_size: usize,
    /// `REDIS_KEY_PREFIX` (default empty): prepended to every key this service writes.
    pub key_prefix: String,
}

impl RedisSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let url = string_or(env, "REDIS_URL", "redis://127.0.0.1:6379");
        redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map_err(|e| ConfigError::new("REDIS_URL", &url, e))?;
        Ok(Self {
            url,
            pool_size: ranged_or(env, "REDIS_POOL_SIZE", 16, 1..=1024)?,
            key_prefix: string_or(env, "REDIS_KEY_PREFIX", ""),
        })
    }

    /// `key` with this service's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }
}

/// A pool whose connections open on first use and give up quickly when Redis is down.
pub fn pool(settings: &RedisSettings) -> anyhow::Result<Pool> {
    let mut config = Config::from_url(settings.url.clone());
    let mut pool_config = deadpool_redis::PoolConfig::new(settings.pool_size);
    pool_config.timeouts = Timeouts {
        wait: Some(Duration::from_secs(2)),
        create: Some(Duration::from_secs(2)),
        recycle: Some(Duration::from_secs(1)),
    };
    config.pool = Some(pool_config);
    Ok(config.create_pool(Some(Runtime::Tokio1))?)
}

/// One multiplexed connection for a process's hot paths, shared by every task (redis-rs
/// pipelines concurrent commands on it), taken from the pool once and replaced after it
/// breaks. A pool checkout is not free: deadpool-redis recycles a connection with an
/// `UNWATCH`+`PING` round trip, so a checkout per command doubles a request's round trips.
/// Not for `WATCH`/`MULTI` or blocking commands (those need a connection of their own).
#[derive(Clone)]
pub struct SharedConnection {
    pool: Pool,
    current: std::sync::Arc<std::sync::Mutex<Option<redis::aio::MultiplexedConnection>>>,
}

impl SharedConnection {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            current: Default::default(),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<redis::aio::MultiplexedConnection>> {
        // A clone in, a clone out: no state a panic could leave half-written.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shared connection (a cheap handle to it).
    pub async fn get(
        &self,
    ) -> Result<redis::aio::MultiplexedConnection, deadpool_redis::PoolError> {
        if let Some(conn) = self.slot().clone() {
            return Ok(conn);
        }
        let conn = (*self.pool.get().await?).clone();
        *self.slot() = Some(conn.clone());
        Ok(conn)
    }

    /// Tells that a command on the shared connection failed: after a connection-level error
    /// the next [`Self::get`] takes a fresh connection from the pool.
    pub fn failed(&self, err: &redis::RedisError) {
        if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_timeout()
            || err.is_unrecoverable_error()
        {
            *self.slot() = None;
        }
    }

    /// Runs `cmd` on the shared connection.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> anyhow::Result<T> {
        let mut conn = self.get().await?;
        cmd.query_async(&mut conn).await.map_err(|e| {
            self.failed(&e);
            e.into()
        })
    }
}

/// Readiness: `PING`.
pub struct RedisProbe(pub Pool);

#[async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        let mut conn = self.0.get().await.map_err(|e| e.to_string())?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected PING answer `{pong}`"))
        }
    }
}
