//! The transactional outbox. A service appends its events with [`append`] inside the same
//! database transaction as the change they describe, so an event exists exactly when the
//! change committed; the [`relay`] publishes them.
//!
//! Rows are `pending` → `sent`, or `dead` after too many failed publishes (the seed's
//! dead-letter store); [`redrive`] puts dead rows back in play. Each row belongs to one of
//! [`SHARDS`] shards by its aggregate key: a relay owns a shard while it publishes from it,
//! which keeps one aggregate's events in order even with a relay in every replica.

pub mod relay;
mod schema;

use contracts::EventEnvelope;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde::Serialize;

pub use relay::{OutboxRelay, RelayHandle};
pub use schema::CreateOutbox;

/// Shards of the outbox. Fixed: a row's shard is computed when it is written.
pub const SHARDS: i16 = 32;

/// The NOTIFY channel a relay listens on to publish without waiting for its poll.
pub const NOTIFY_CHANNEL: &str = "event_outbox";

/// The shard of an aggregate key.
pub fn shard_of(aggregate_key: &str) -> i16 {
    // Both operands fit in i16: the result is below SHARDS.
    (crc32fast::hash(aggregate_key.as_bytes()) % SHARDS as u32) as i16
}

/// Writes `envelope` to the outbox through `conn` — pass the transaction that writes the
/// change. `aggregate_key` becomes the Kafka message key: events with the same key are
/// published in the order they were appended. Fills the trace context from the current span
/// when the envelope has none.
pub async fn append<C, P>(
    conn: &C,
    envelope: &EventEnvelope<P>,
    aggregate_key: &str,
) -> Result<(), DbErr>
where
    C: ConnectionTrait,
    P: Serialize,
{
    let mut json = serde_json::to_value(envelope)
        .map_err(|e| DbErr::Custom(format!("event does not serialise: {e}")))?;
    if envelope.trace.is_none()
        && let Some(trace) = telemetry::current_trace_context()
    {
        json["trace"] = serde_json::to_value(trace)
            .map_err(|e| DbErr::Custom(format!("trace does not serialise: {e}")))?;
    }
    let body = json.to_string();
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        r#"INSERT INTO event_outbox
             (event_id, topic, aggregate_key, shard, event_type, occurred_at, envelope)
           VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
        [
            envelope.event_id.into(),
            envelope.event_type.topic().as_str().into(),
            aggregate_key.into(),
            shard_of(aggregate_key).into(),
            envelope.event_type.as_str().into(),
            envelope.occurred_at.into(),
            body.into(),
        ],
    ))
    .await?;
    if should_notify() {
        // Delivered at commit; wakes relays at once instead of at their next poll.
        conn.execute_unprepared(&format!("NOTIFY {NOTIFY_CHANNEL}"))
            .await?;
    }
    Ok(())
}

/// At most one NOTIFY per process every [`NOTIFY_EVERY`]: Postgres serialises the commits
/// of notifying transactions, so notifying on every write would make a hot row hotter. A
/// relay woken once keeps publishing until the outbox is empty, so one wake-up per window
/// loses no latency.
const NOTIFY_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

fn should_notify() -> bool {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_micros(),
    )
    .unwrap_or(u64::MAX)
    .saturating_add(1);
    let last = LAST.load(Ordering::Relaxed);
    let window = u64::try_from(NOTIFY_EVERY.as_micros()).unwrap_or(10_000);
    (last == 0 || now.saturating_sub(last) >= window)
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Counts that describe the outbox's health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxStats {
    pub pending: i64,
    pub dead: i64,
    /// Age of the oldest row not yet sent, in seconds (0 when none).
    pub oldest_unsent_age_seconds: f64,
}

/// Reads the outbox's backlog.
pub async fn stats<C: ConnectionTrait>(conn: &C) -> Result<OutboxStats, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            r#"SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                      count(*) FILTER (WHERE status = 'dead') AS dead,
                      COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) AS age
                 FROM event_outbox WHERE status <> 'sent'"#,
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("outbox stats".into()))?;
    Ok(OutboxStats {
        pending: row.try_get("", "pending")?,
        dead: row.try_get("", "dead")?,
        oldest_unsent_age_seconds: row.try_get("", "age")?,
    })
}

/// Puts every dead row back in play (attempts reset). Returns how many.
pub async fn redrive<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
    let result = conn
        .execute_unprepared(
            "UPDATE event_outbox
                SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
              WHERE status = 'dead'",
        )
        .await?;
    if result.rows_affected() > 0 {
        conn.execute_unprepared(&format!("NOTIFY {NOTIFY_CHANNEL}"))
            .await?;
    }
    Ok(result.rows_affected())
}

/// Deletes sent rows older than `retention`, a bounded batch at a time. Returns how many.
pub async fn prune_sent<C: ConnectionTrait>(
    conn: &C,
    retention: std::time::Duration,
) -> Result<u64, DbErr> {
    let mut total = 0;
    loop {
        let result = conn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                r#"DELETE FROM event_outbox WHERE id IN (
                     SELECT id FROM event_outbox
                      WHERE status = 'sent' AND sent_at < now() - make_interval(secs => $1)
                      LIMIT 5000)"#,
                [retention.as_secs_f64().into()],
            ))
            .await?;
        total += result.rows_affected();
        if result.rows_affected() < 5000 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("post:42"), shard_of("post:42"));
        for key in ["a", "post:1", "post:2", "member:99", ""] {
            assert!((0..SHARDS).contains(&shard_of(key)));
        }
    }
}
