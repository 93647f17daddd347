//! Idempotency keys: the first response to a create is stored with its key (in the same
//! transaction as the create), and a retry with the same key gets that response back.

use sea_orm::{ConnectionTrait, DbErr};

use super::sql;

pub struct Stored {
    pub request_hash: String,
    pub status: u16,
    pub body: serde_json::Value,
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    key: &str,
) -> Result<Option<Stored>, DbErr> {
    let Some(row) = conn
        .query_one_raw(sql(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE member_id = $1 AND key = $2",
            [member.into(), key.into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    let status: i16 = row.try_get("", "response_status")?;
    Ok(Some(Stored {
        request_hash: row.try_get("", "request_hash")?,
        status: u16::try_from(status).unwrap_or(200),
        body: row.try_get("", "response_body")?,
    }))
}

/// Stores the response; fails with a unique violation if a concurrent request with the
/// same key committed first.
pub async fn store<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), DbErr> {
    conn.execute_raw(sql(
        "INSERT INTO idempotency_keys (member_id, key, request_hash, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5)",
        [member.into(), key.into(), request_hash.into(), i16::try_from(status).unwrap_or(200).into(), body.clone().into()],
    ))
    .await?;
    Ok(())
}

/// Forgets keys older than `retention`.
pub async fn prune<C: ConnectionTrait>(
    conn: &C,
    retention: std::time::Duration,
) -> Result<u64, DbErr> {
    Ok(conn
        .execute_raw(sql(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            [retention.as_secs_f64().into()],
        ))
        .await?
        .rows_affected())
}
