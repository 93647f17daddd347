//! Redis dedup for consumers, with the seed's key format (contracts::dedup) namespaced by
//! consumer group (each group must see every event once; groups must not mask each other).
//!
//! A key moves `pending` (a short lease, `SET NX PX`) → `done` (kept for the dedup TTL). A
//! failed handler releases the lease so the retry runs; a consumer that dies mid-handler
//! leaves a lease that expires, after which a redelivery runs again. If Redis itself is
//! unreachable the message is processed anyway: handlers upsert, so the store still refuses
//! a duplicate effect.

use std::time::Duration;

use contracts::EventEnvelope;
use deadpool_redis::Pool;

const PENDING: &str = "pending";
const DONE: &str = "done";

/// The outcome of trying to claim an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time (or a retry after a release): handle it.
    Acquired,
    /// Already handled: skip.
    Duplicate,
    /// Another consumer holds the lease right now: try again later.
    InProgress,
    /// Redis did not answer: handle it and rely on the handler's upsert.
    Unavailable,
}

#[derive(Clone)]
pub struct Dedup {
    pool: Pool,
    prefix: String,
    ttl: Duration,
    lease: Duration,
}

impl Dedup {
    /// `prefix` is the service's Redis key prefix; keys are `{prefix}{group}:{seed key}`.
    pub fn new(pool: Pool, prefix: &str, group: &str, ttl: Duration, lease: Duration) -> Self {
        Self {
            pool,
            prefix: format!("{prefix}{group}:"),
            ttl,
            lease,
        }
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    pub fn key(&self, event: &EventEnvelope) -> String {
        format!("{}{}", self.prefix, event.dedup_key())
    }

    pub async fn claim(&self, key: &str) -> Claim {
        match self.try_claim(key).await {
            Ok(claim) => claim,
            Err(err) => {
                tracing::warn!(error = %err, "dedup unavailable; relying on the handler's upsert");
                metrics::counter!("consumer_dedup_unavailable_total").increment(1);
                Claim::Unavailable
            }
        }
    }

    async fn try_claim(&self, key: &str) -> anyhow::Result<Claim> {
        let mut conn = self.pool.get().await?;
        for _ in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(PENDING)
                .arg("NX")
                .arg("PX")
                .arg(millis(self.lease))
                .query_async(&mut *conn)
                .await?;
            if set.is_some() {
                return Ok(Claim::Acquired);
            }
            let state: Option<String> = redis::cmd("GET").arg(key).query_async(&mut *conn).await?;
            match state.as_deref() {
                Some(DONE) => return Ok(Claim::Duplicate),
                Some(_) => return Ok(Claim::InProgress),
                None => continue, // the lease expired between SET and GET: try again
            }
        }
        Ok(Claim::InProgress)
    }

    /// Marks the event handled for the dedup TTL.
    pub async fn complete(&self, key: &str) {
        if let Err(err) = self.set(key, DONE, self.ttl).await {
            tracing::warn!(error = %err, "cannot mark event handled in dedup");
        }
    }

    /// Drops the lease so a retry can run.
    pub async fn release(&self, key: &str) {
        let result: anyhow::Result<()> = async {
            let mut conn = self.pool.get().await?;
            let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut *conn).await?;
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot release dedup lease; it will expire");
        }
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
