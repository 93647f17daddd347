//! Cache-aside in Redis. Every failure (Redis down, a value that no longer parses) is a
//! miss: the caller goes to the database, never to an error.

use std::time::Duration;

use deadpool_redis::Pool;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Clone)]
pub struct Cache {
    redis: Pool,
    prefix: String,
}

impl Cache {
    pub fn new(redis: Pool, key_prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{key_prefix}timeline:"),
        }
    }

    /// The full key for `name` (`{REDIS_KEY_PREFIX}timeline:{name}`).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let mut conn = self.redis.get().await.ok()?;
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(name))
            .query_async(&mut conn)
            .await
            .ok()?;
        let value = serde_json::from_slice(&raw?).ok();
        metrics::counter!("timeline_cache_total", "outcome" => if value.is_some() { "hit" } else { "miss" })
            .increment(1);
        value
    }

    /// Values of several keys, `None` for each miss.
    pub async fn get_many<T: DeserializeOwned>(&self, names: &[String]) -> Vec<Option<T>> {
        let misses = || names.iter().map(|_| None).collect();
        if names.is_empty() {
            return Vec::new();
        }
        let Ok(mut conn) = self.redis.get().await else {
            return misses();
        };
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let raw: Result<Vec<Option<Vec<u8>>>, _> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await;
        match raw {
            Ok(values) => values
                .into_iter()
                .map(|v| v.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
                .collect(),
            Err(_) => misses(),
        }
    }

    pub async fn put<T: Serialize>(&self, name: &str, value: &T, ttl: Duration) {
        self.put_many(&[(name.to_owned(), value)], ttl).await;
    }

    pub async fn put_many<T: Serialize>(&self, entries: &[(String, T)], ttl: Duration) {
        if entries.is_empty() {
            return;
        }
        let Ok(mut conn) = self.redis.get().await else {
            return;
        };
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        for (name, value) in entries {
            if let Ok(json) = serde_json::to_vec(value) {
                pipe.cmd("SET")
                    .arg(self.key(name))
                    .arg(json)
                    .arg("PX")
                    .arg(millis)
                    .ignore();
            }
        }
        let stored: Result<(), _> = pipe.query_async(&mut conn).await;
        if let Err(err) = stored {
            tracing::debug!(error = %err, "cannot fill the cache");
        }
    }

    /// Drops entries (they are rebuilt on the next read).
    pub async fn forget(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let Ok(mut conn) = self.redis.get().await else {
            return;
        };
        for chunk in names.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|n| self.key(n)).collect();
            let dropped: Result<i64, _> =
                redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
            if let Err(err) = dropped {
                tracing::warn!(error = %err, "cannot invalidate cached entries");
                return;
            }
        }
    }
}
