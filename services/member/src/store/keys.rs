//! The `jwt_keys` table. Rotation runs under a transaction-scoped advisory lock, so with
//! several replicas ticking at once exactly one of them creates the next key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};

/// Advisory lock key (class, id) of key rotation.
const ROTATION_LOCK: (i32, i32) = (0x6466, 1000);

#[derive(Debug, Clone, FromQueryResult)]
pub struct KeyRow {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key_enc: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub active: bool,
}

const COLUMNS: &str = "kid, public_key, private_key_enc, created_at, retired_at, active";

/// A key to insert.
pub struct NewKey {
    pub kid: String,
    pub algorithm: &'static str,
    pub public_key: Vec<u8>,
    pub private_key_enc: Vec<u8>,
}

pub async fn active<C: ConnectionTrait>(conn: &C) -> Result<Option<KeyRow>, DbErr> {
    KeyRow::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT {COLUMNS} FROM jwt_keys WHERE active"),
    ))
    .one(conn)
    .await
}

/// Every key a still-valid token may be signed with: the active one, and those retired less
/// than `access_ttl` ago. Newest first.
pub async fn verifiable<C: ConnectionTrait>(
    conn: &C,
    access_ttl: Duration,
) -> Result<Vec<KeyRow>, DbErr> {
    KeyRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT {COLUMNS} FROM jwt_keys
              WHERE active OR retired_at > now() - make_interval(secs => $1)
              ORDER BY created_at DESC"
        ),
        [access_ttl.as_secs_f64().into()],
    ))
    .all(conn)
    .await
}

/// Creates a key (retiring the active one) when there is none or the active one is at least
/// `interval` old. Returns the new key's kid, or `None` if no rotation was due.
pub async fn rotate_if_due(
    db: &DatabaseConnection,
    interval: Duration,
    access_ttl: Duration,
    new_key: impl FnOnce() -> anyhow::Result<NewKey>,
) -> anyhow::Result<Option<String>> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, $2)",
        [ROTATION_LOCK.0.into(), ROTATION_LOCK.1.into()],
    ))
    .await?;
    let due = match active(&txn).await? {
        None => true,
        Some(key) => {
            let age = (Utc::now() - key.created_at).to_std().unwrap_or_default();
            age >= interval
        }
    };
    if !due {
        txn.commit().await?;
        return Ok(None);
    }
    let key = new_key()?;
    txn.execute_unprepared("UPDATE jwt_keys SET active = FALSE, retired_at = now() WHERE active")
        .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO jwt_keys (kid, algorithm, public_key, private_key_enc) VALUES ($1, $2, $3, $4)",
        [
            key.kid.clone().into(),
            key.algorithm.into(),
            key.public_key.into(),
            key.private_key_enc.into(),
        ],
    ))
    .await?;
    // Keys that cannot verify anything any more are deleted (a day's margin for clock skew).
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM jwt_keys WHERE retired_at < now() - make_interval(secs => $1) - interval '1 day'",
        [access_ttl.as_secs_f64().into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(Some(key.kid))
}
