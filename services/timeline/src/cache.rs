//! Cache-aside in Redis, with a short-lived in-process copy of finished first pages in
//! front of it. Every failure (Redis down, a value that no longer parses) is a miss: the
//! caller goes to the database, never to an error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use actix_web::web::Bytes;

use deadpool_redis::Pool;
use serde::Serialize;
use serde::de::DeserializeOwned;
use service_runtime::redis::SharedConnection;

#[derive(Clone)]
pub struct Cache {
    redis: SharedConnection,
    prefix: String,
    pages: Option<Arc<LocalPages>>,
}

/// Finished response bodies of first pages, per cache name and page size, kept in this
/// process for `TIMELINE_LOCAL_CACHE_MILLIS`: a hit answers without Redis, JSON or member.
/// An instance drops its copies when it handles the event that makes them stale; the
/// others serve theirs until they age out (the setting bounds that).
struct LocalPages {
    bodies: quick_cache::sync::Cache<(String, u32), Arc<LocalPage>>,
    ttl: Duration,
}

struct LocalPage {
    body: Bytes,
    stored: Instant,
}

/// Page sizes a first page can be asked for and cached under.
const LOCAL_LIMITS: std::ops::RangeInclusive<u32> = 1..=pagination::DEFAULT_LIMIT;

impl Cache {
    /// `local_entries` finished pages are kept in-process for `local_ttl` (0 turns that off).
    pub fn new(redis: Pool, key_prefix: &str, local_ttl: Duration, local_entries: usize) -> Self {
        let pages = (!local_ttl.is_zero() && local_entries > 0).then(|| {
            Arc::new(LocalPages {
                bodies: quick_cache::sync::Cache::new(local_entries),
                ttl: local_ttl,
            })
        });
        Self {
            redis: SharedConnection::new(redis),
            prefix: format!("{key_prefix}timeline:"),
            pages,
        }
    }

    /// The finished body of the first page `name` of `limit` rows, if this process has a
    /// fresh one.
    pub fn local_page(&self, name: &str, limit: u32) -> Option<Bytes> {
        let pages = self.pages.as_ref()?;
        let key = (name.to_owned(), limit);
        let page = pages.bodies.get(&key)?;
        if page.stored.elapsed() < pages.ttl {
            metrics::counter!("timeline_cache_total", "outcome" => "local_hit").increment(1);
            Some(page.body.clone())
        } else {
            pages.bodies.remove(&key);
            None
        }
    }

    pub fn keep_local_page(&self, name: &str, limit: u32, body: Bytes) {
        if let Some(pages) = &self.pages
            && LOCAL_LIMITS.contains(&limit)
        {
            let page = LocalPage {
                body,
                stored: Instant::now(),
            };
            pages
                .bodies
                .insert((name.to_owned(), limit), Arc::new(page));
        }
    }

    fn forget_local(&self, names: &[String]) {
        if let Some(pages) = &self.pages {
            for name in names {
                for limit in LOCAL_LIMITS {
                    pages.bodies.remove(&(name.clone(), limit));
                }
            }
        }
    }

    /// The full key for `name` (`{REDIS_KEY_PREFIX}timeline:{name}`).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let raw: Option<Vec<u8>> = self
            .redis
            .query(redis::cmd("GET").arg(self.key(name)))
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
        let keys: Vec<String> = names.iter().map(|n| self.key(n)).collect();
        let raw: anyhow::Result<Vec<Option<Vec<u8>>>> =
            self.redis.query(redis::cmd("MGET").arg(&keys)).await;
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
            self.redis.failed(&err);
            tracing::debug!(error = %err, "cannot fill the cache");
        }
    }

    /// Drops entries here and in Redis (they are rebuilt on the next read).
    pub async fn forget(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        self.forget_local(names);
        let Ok(mut conn) = self.redis.get().await else {
            return;
        };
        for chunk in names.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|n| self.key(n)).collect();
            let dropped: Result<i64, _> =
                redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
            if let Err(err) = dropped {
                self.redis.failed(&err);
                tracing::warn!(error = %err, "cannot invalidate cached entries");
                return;
            }
        }
    }
}

/// Concurrent misses of one cache entry share one fill: the first caller's query runs,
/// everyone else waiting on the same name gets its answer (an expiring hot list would
/// otherwise send every concurrent reader to the database at once — measured: 600 readers
/// of `popular` ran out of database connections when its entry expired).
pub struct SingleFlight<T> {
    flights: std::sync::Mutex<HashMap<String, Flight<T>>>,
}

type Flight<T> = Shared<BoxFuture<'static, Result<Arc<T>, Arc<sea_orm::DbErr>>>>;

impl<T: Send + Sync + 'static> Default for SingleFlight<T> {
    fn default() -> Self {
        Self {
            flights: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Send + Sync + 'static> SingleFlight<T> {
    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flight<T>>> {
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Self::run`] when `shared`; otherwise `fill` alone (a page that is not cached is not
    /// shared either).
    pub async fn run_if<F>(
        &self,
        shared: bool,
        name: &str,
        fill: F,
    ) -> Result<Arc<T>, Arc<sea_orm::DbErr>>
    where
        F: Future<Output = Result<T, sea_orm::DbErr>> + Send + 'static,
    {
        if shared {
            self.run(name, fill).await
        } else {
            fill.await.map(Arc::new).map_err(Arc::new)
        }
    }

    /// `fill`'s answer, or the answer of the fill for `name` already running.
    pub async fn run<F>(&self, name: &str, fill: F) -> Result<Arc<T>, Arc<sea_orm::DbErr>>
    where
        F: Future<Output = Result<T, sea_orm::DbErr>> + Send + 'static,
    {
        let (flight, leader) = {
            let mut flights = self.flights();
            match flights.get(name) {
                Some(flight) => (flight.clone(), false),
                None => {
                    let flight = fill
                        .map(|r| r.map(Arc::new).map_err(Arc::new))
                        .boxed()
                        .shared();
                    flights.insert(name.to_owned(), flight.clone());
                    (flight, true)
                }
            }
        };
        if !leader {
            metrics::counter!("timeline_cache_total", "outcome" => "coalesced").increment(1);
        }
        let answer = flight.clone().await;
        // Whoever sees it finish retires it (the first caller may have gone away meanwhile).
        let mut flights = self.flights();
        if flights.get(name).is_some_and(|f| f.ptr_eq(&flight)) {
            flights.remove(name);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn cache(local_ttl: Duration) -> Cache {
        // Never connected in these tests: the pool connects on first use.
        let pool = service_runtime::redis::pool(&service_runtime::redis::RedisSettings {
            url: "redis://127.0.0.1:1".into(),
            pool_size: 1,
            key_prefix: String::new(),
        })
        .expect("a lazy pool");
        Cache::new(pool, "t:", local_ttl, 100)
    }

    #[tokio::test]
    async fn local_pages_expire_and_are_forgotten_with_their_entry() {
        let cache = cache(Duration::from_millis(200));
        cache.keep_local_page("following:1", 20, Bytes::from_static(b"page"));
        cache.keep_local_page("following:1", 5, Bytes::from_static(b"small"));
        cache.keep_local_page("following:1", 50, Bytes::from_static(b"too big to keep"));
        assert_eq!(
            cache.local_page("following:1", 20).as_deref(),
            Some(&b"page"[..])
        );
        assert_eq!(
            cache.local_page("following:1", 50),
            None,
            "only cacheable sizes"
        );
        assert_eq!(cache.local_page("following:2", 20), None);
        // Forgetting the entry (Redis down here: still dropped locally) drops every size.
        cache.forget(&["following:1".to_owned()]).await;
        assert_eq!(cache.local_page("following:1", 20), None);
        assert_eq!(cache.local_page("following:1", 5), None);
        cache.keep_local_page("following:1", 20, Bytes::from_static(b"page"));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.local_page("following:1", 20), None, "aged out");
    }

    #[tokio::test]
    async fn a_zero_ttl_keeps_nothing_locally() {
        let cache = cache(Duration::ZERO);
        cache.keep_local_page("popular:24h", 20, Bytes::from_static(b"page"));
        assert_eq!(cache.local_page("popular:24h", 20), None);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fill() {
        let flights: Arc<SingleFlight<u32>> = Arc::default();
        let fills = Arc::new(AtomicU32::new(0));
        let runs = (0..20).map(|_| {
            let (flights, fills) = (Arc::clone(&flights), Arc::clone(&fills));
            tokio::spawn(async move {
                flights
                    .run("popular:24h", async move {
                        fills.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok(7)
                    })
                    .await
            })
        });
        for run in futures_util::future::join_all(runs).await {
            assert_eq!(run.ok().and_then(Result::ok).as_deref(), Some(&7));
        }
        assert_eq!(fills.load(Ordering::SeqCst), 1, "one query for 20 readers");
        // Finished flights are retired: the next miss fills again, and errors reach everyone.
        let again = flights
            .run("popular:24h", async {
                Err(sea_orm::DbErr::Custom("down".into()))
            })
            .await;
        assert!(again.is_err());
        assert!(flights.flights().is_empty());
    }
}
