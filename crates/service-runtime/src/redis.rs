//! Redis: `REDIS_URL`, `REDIS_POOL_SIZE`, `REDIS_KEY_PREFIX` (isolates tests and tenants
//! sharing one Redis), a deadpool pool that connects on demand, and its probe.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, ThreadId};
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::Manager as _;
use deadpool_redis::{Config, Pool, Runtime, Timeouts};
use thread_local::ThreadLocal;

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

/// Multiplexed connections for a process's hot paths, shared by every task (redis-rs
/// pipelines concurrent commands on each), one per thread, replaced after one breaks.
///
/// Why not a pool checkout per command: deadpool-redis recycles a connection with an
/// `UNWATCH`+`PING` round trip, so a checkout per command doubles a request's round trips.
/// Why one per thread and not one per process: a multiplexed connection's reader and
/// writer run as a task on the runtime that opened it, so with one per process every
/// command from another actix worker crossed threads twice (a wake-up each way). Each
/// worker now talks to Redis from its own thread.
///
/// Not for `WATCH`/`MULTI` or blocking commands (those need a connection of their own).
#[derive(Clone)]
pub struct SharedConnection {
    pool: Pool,
    inner: Arc<PerThread>,
}

#[derive(Default)]
struct PerThread {
    /// Bumped when a connection breaks: every thread's connection older than it is replaced
    /// (a task can report a failure from another thread than the one it got its handle on).
    generation: AtomicU64,
    slots: ThreadLocal<RefCell<Option<Slot>>>,
}

struct Slot {
    generation: u64,
    /// `ThreadLocal` hands an exited thread's slot to a later thread; std's thread ids are
    /// never reused, so a slot is only good for the thread that filled it (whose runtime ran
    /// the connection's task).
    thread: ThreadId,
    conn: redis::aio::MultiplexedConnection,
}

/// How long opening a connection may take (the pool's own create timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl SharedConnection {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            inner: Arc::default(),
        }
    }

    fn cached(&self) -> Option<redis::aio::MultiplexedConnection> {
        let generation = self.inner.generation.load(Ordering::Acquire);
        match &*self.inner.slots.get_or_default().borrow() {
            Some(slot)
                if slot.generation == generation && slot.thread == thread::current().id() =>
            {
                Some(slot.conn.clone())
            }
            _ => None,
        }
    }

    /// This thread's connection (a cheap handle to it), opened on first use.
    pub async fn get(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        if let Some(conn) = self.cached() {
            return Ok(conn);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.pool.manager().create())
            .await
            .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
        // The task may have moved threads while connecting: the handle works from anywhere,
        // and is kept for whichever thread this is now.
        *self.inner.slots.get_or_default().borrow_mut() = Some(Slot {
            generation,
            thread: thread::current().id(),
            conn: conn.clone(),
        });
        Ok(conn)
    }

    /// Tells that a command on a shared connection failed: after a connection-level error
    /// every thread's next [`Self::get`] opens a fresh connection.
    pub fn failed(&self, err: &redis::RedisError) {
        if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_timeout()
            || err.is_unrecoverable_error()
        {
            self.inner.generation.fetch_add(1, Ordering::AcqRel);
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
