//! Creates that a client may retry: with an `Idempotency-Key` header, the first response is
//! stored with the key in the create's own transaction, and a retry answers it again
//! (`Idempotency-Replayed: true`) instead of creating twice — also when the retry races the
//! original (the loser's transaction rolls back, leaving no row and no event).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use contracts::headers::IDEMPOTENCY_KEY;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::input;
use crate::error::{ContentError, Result, invalid};
use crate::state::AppState;
use crate::store::{self, idempotency};

const REPLAYED: &str = "Idempotency-Replayed";

fn key(req: &HttpRequest) -> Result<Option<String>> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| invalid("Idempotency-Key", "must be visible ASCII".into()))?;
    input::idempotency_key(value)
        .map(Some)
        .map_err(|m| invalid("Idempotency-Key", m))
}

fn replay(stored: idempotency::Stored, hash: &str) -> Result<HttpResponse> {
    if stored.request_hash != hash {
        return Err(ContentError::IdempotencyMismatch);
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    Ok(HttpResponse::build(status)
        .insert_header((REPLAYED, "true"))
        .json(stored.body))
}

/// Runs `create` (which writes the row and its event through the transaction) at most once
/// per `(member, Idempotency-Key)`; answers 201 with what it returns.
pub async fn create_once<R, F>(
    state: &AppState,
    req: &HttpRequest,
    member: i64,
    request: &R,
    create: F,
) -> Result<HttpResponse>
where
    R: Serialize,
    F: AsyncFnOnce(&DatabaseTransaction) -> Result<serde_json::Value>,
{
    let key = key(req)?;
    let hash = {
        let canonical = serde_json::to_vec(request).map_err(anyhow::Error::from)?;
        let mut digest = Sha256::new();
        digest.update(req.path().as_bytes());
        digest.update([0]);
        digest.update(&canonical);
        digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    if let Some(key) = &key
        && let Some(stored) = idempotency::find(&state.db, member, key).await?
    {
        return replay(stored, &hash);
    }
    let txn = state.db.begin().await?;
    let body = create(&txn).await?;
    if let Some(key) = &key {
        let stored = idempotency::store(
            &txn,
            member,
            key,
            &hash,
            StatusCode::CREATED.as_u16(),
            &body,
        )
        .await;
        if let Err(err) = stored {
            if store::is_unique_violation(&err) {
                // A concurrent request with this key won; ours leaves nothing behind.
                txn.rollback().await?;
                let stored = idempotency::find(&state.db, member, key)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("idempotency key vanished"))?;
                return replay(stored, &hash);
            }
            return Err(err.into());
        }
    }
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((REPLAYED, "false"))
        .json(body))
}
