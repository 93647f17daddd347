//! Uploading (`POST`), replacing a profile image (`PUT`) and deleting (`DELETE`).
//!
//! An upload is checked and rendered before anything is stored: a rejected upload leaves no
//! object and no row. Accepted renditions are written to object storage first, then the row
//! and its event commit in one transaction; if that fails, the objects are removed again.
//! Identical bytes from the same owner for the same purpose answer the earlier image (200)
//! without decoding anything.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use auth::AuthMember;
use bytes::Bytes;
use contracts::ErrorBody;
use contracts::images::ImagePurpose;
use ratelimit::Decision;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::form::{self, PURPOSE_FIELD};
use super::view::{ImageView, path};
use crate::domain::{Processed, Rejection, process};
use crate::error::{ImageError, Result, invalid};
use crate::publish;
use crate::state::AppState;
use crate::store::images::{self, ImageRow, NewImage};
use crate::store::objects::{Rendition, key};

/// The upload form (`multipart/form-data`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UploadRequest {
    /// The image: JPEG, PNG, WebP or GIF (first frame), decided from its bytes.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// `profile` or `post` (`PUT` accepts only `profile`, and may leave it out).
    pub purpose: ImagePurpose,
}

/// Uploads an image. 201 with the new image; 200 with the earlier one when I already
/// uploaded the same bytes for the same purpose.
#[utoipa::path(post, path = "/api/v1/images", tag = "images", security(("bearer" = [])),
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = ImageView, description = "stored; `Location` names it"),
        (status = 200, body = ImageView, description = "the same bytes were uploaded before"),
        (status = 400, body = ErrorBody, description = "the multipart body cannot be read"),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "larger than IMAGE_MAX_BYTES"),
        (status = 415, body = ErrorBody, description = "not multipart, or not an accepted image type"),
        (status = 422, body = ErrorBody, description = "missing or unknown part, damaged image, too many pixels"),
        (status = 429, body = ErrorBody, description = "more than IMAGE_UPLOADS_PER_MINUTE"),
        (status = 503, body = ErrorBody, description = "every decode slot busy for IMAGE_DECODE_WAIT_SECONDS")))]
pub async fn upload(
    req: HttpRequest,
    member: AuthMember,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    check_rate(&state, member.id()).await?;
    let form = form::read(&req, payload, state.limits.max_bytes).await?;
    let purpose = form
        .purpose
        .ok_or_else(|| invalid(PURPOSE_FIELD, "required: profile or post"))?;
    let (row, created) = accept(&state, member.id(), purpose, form.file, None).await?;
    Ok(answer(&row, created))
}

/// Replaces my profile image: the new image gets a new id (image URLs are cached as
/// immutable), the old one is deleted, and both events say so (`replaces`/`replaced_by`).
#[utoipa::path(put, path = "/api/v1/images/{id}", tag = "images", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the profile image to replace")),
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = ImageView, description = "the new image; the old id answers 404"),
        (status = 200, body = ImageView, description = "the same bytes as an image I already have"),
        (status = 403, body = ErrorBody, description = "not my image"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not a profile image"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn replace(
    req: HttpRequest,
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let current = owned(&state, id, member.id()).await?;
    if current.purpose() != ImagePurpose::Profile {
        return Err(ImageError::NotProfile);
    }
    check_rate(&state, member.id()).await?;
    let form = form::read(&req, payload, state.limits.max_bytes).await?;
    if form.purpose.is_some_and(|p| p != ImagePurpose::Profile) {
        return Err(invalid(
            PURPOSE_FIELD,
            "only a profile image can replace a profile image",
        ));
    }
    let (row, created) = accept(
        &state,
        member.id(),
        ImagePurpose::Profile,
        form.file,
        Some(id),
    )
    .await?;
    Ok(answer(&row, created))
}

/// Deletes my image: its URLs answer 404 and IMAGE_DELETE tells the other services.
#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "images", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let txn = state.db.begin().await?;
    let row = images::find(&txn, id, true)
        .await?
        .ok_or(ImageError::NotFound)?;
    if row.owner_id != member.id() {
        return Err(ImageError::NotOwner);
    }
    images::delete(&txn, id).await?;
    publish::deleted(&txn, &row, None).await?;
    txn.commit().await?;
    // After the commit: a crash here leaves unreachable objects, never a row without bytes.
    state.objects.discard_image(id).await;
    metrics::counter!("image_deletes_total").increment(1);
    Ok(HttpResponse::NoContent().finish())
}

fn answer(row: &ImageRow, created: bool) -> HttpResponse {
    let view = ImageView::from(row);
    if created {
        HttpResponse::Created()
            .insert_header((header::LOCATION, path(row.id)))
            .json(view)
    } else {
        HttpResponse::Ok().json(view)
    }
}

/// The image, if `member` owns it.
async fn owned(state: &AppState, id: i64, member: i64) -> Result<ImageRow> {
    let row = images::find(&state.db, id, false)
        .await?
        .ok_or(ImageError::NotFound)?;
    if row.owner_id != member {
        return Err(ImageError::NotOwner);
    }
    Ok(row)
}

async fn check_rate(state: &AppState, member: i64) -> Result<()> {
    match state
        .limiter
        .hit(&state.upload_rate, &member.to_string())
        .await
    {
        Ok(Decision::Allowed { .. }) => Ok(()),
        Ok(Decision::Limited { retry_after }) => {
            metrics::counter!("image_uploads_total", "outcome" => "rate_limited").increment(1);
            Err(ImageError::RateLimited(retry_after))
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot check the upload rate");
            Err(service_runtime::HttpError::unavailable(
                contracts::error::codes::DEPENDENCY_UNAVAILABLE,
                "cannot check the upload rate right now; try again shortly",
            )
            .with_header("Retry-After", "1")
            .into())
        }
    }
}

/// Runs CPU-heavy `work` on a blocking thread once a slot is free (waiting at most
/// `IMAGE_DECODE_WAIT_SECONDS`), so uploads never run on the async workers and never more
/// than `IMAGE_DECODE_CONCURRENCY` at once.
async fn on_cpu_slot<T, F>(state: &AppState, work: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = tokio::time::timeout(
        state.limits.decode_wait,
        state.cpu_slots.clone().acquire_owned(),
    )
    .await
    .map_err(|_| ImageError::Busy)?
    .map_err(|e| ImageError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|e| {
        // Only a decoder can panic here, and only on the bytes it was given: the upload's
        // fault, answered like any other undecodable file.
        tracing::error!(error = %e, "an image worker panicked");
        Rejection::Corrupt("the file could not be decoded".into()).into()
    })
}

/// A fresh random id below 2^53 (JSON-safe, not enumerable).
fn new_id() -> i64 {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    i64::try_from(high >> 11).unwrap_or(1).max(1)
}

/// Validates, renders and stores `file` for `owner`; with `replacing`, the profile image it
/// replaces is deleted in the same transaction. Returns the image and whether it is new.
async fn accept(
    state: &AppState,
    owner: i64,
    purpose: ImagePurpose,
    file: Bytes,
    replacing: Option<i64>,
) -> Result<(ImageRow, bool)> {
    let hashed = file.clone();
    let sha256 = on_cpu_slot(state, move || {
        Sha256::digest(&hashed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    })
    .await?;
    if let Some(earlier) =
        images::find_duplicate(&state.db, owner, purpose.as_str(), &sha256).await?
    {
        metrics::counter!("image_uploads_total", "outcome" => "duplicate").increment(1);
        return finish_replacement(state, earlier, false, replacing).await;
    }

    let limits = state.processing.clone();
    let started = Instant::now();
    let processed = on_cpu_slot(state, move || process(&file, &limits)).await?;
    metrics::histogram!("image_processing_seconds").record(started.elapsed().as_secs_f64());
    let processed = match processed {
        Ok(processed) => processed,
        Err(rejection) => {
            metrics::counter!("image_uploads_total", "outcome" => "rejected").increment(1);
            return Err(rejection.into());
        }
    };

    let id = new_id();
    let new = new_image(id, owner, purpose, &processed, sha256);
    if let Err(err) = put_renditions(state, id, processed).await {
        state.objects.discard_image(id).await;
        return Err(err);
    }
    let inserted = async {
        let txn = state.db.begin().await?;
        let Some(row) = images::insert(&txn, &new).await? else {
            // The same bytes committed by a concurrent upload since we looked.
            return Ok::<_, ImageError>(None);
        };
        let replaced = replacing.filter(|old| *old != row.id);
        publish::uploaded(&txn, &row, replaced).await?;
        if let Some(old) = replaced {
            retire(&txn, old, row.id).await?;
        }
        txn.commit().await?;
        if let Some(old) = replaced {
            state.objects.discard_image(old).await;
        }
        Ok(Some(row))
    }
    .await;
    match inserted {
        Ok(Some(row)) => {
            metrics::counter!("image_uploads_total", "outcome" => "stored").increment(1);
            Ok((row, true))
        }
        Ok(None) => {
            state.objects.discard_image(id).await;
            let earlier = images::find_duplicate(&state.db, owner, purpose.as_str(), &new.sha256)
                .await?
                .ok_or(ImageError::NotFound)?;
            finish_replacement(state, earlier, false, replacing).await
        }
        Err(err) => {
            state.objects.discard_image(id).await;
            Err(err)
        }
    }
}

/// For an upload that turned out to be an image the owner already has: with `replacing`,
/// deletes the replaced image unless it is that same image.
async fn finish_replacement(
    state: &AppState,
    row: ImageRow,
    created: bool,
    replacing: Option<i64>,
) -> Result<(ImageRow, bool)> {
    let Some(old) = replacing.filter(|old| *old != row.id) else {
        return Ok((row, created));
    };
    let txn = state.db.begin().await?;
    retire(&txn, old, row.id).await?;
    txn.commit().await?;
    state.objects.discard_image(old).await;
    Ok((row, created))
}

/// Deletes the replaced image's row and appends its IMAGE_DELETE (objects go after commit).
async fn retire(txn: &DatabaseTransaction, old: i64, replaced_by: i64) -> Result<()> {
    if let Some(row) = images::find(txn, old, true).await? {
        images::delete(txn, old).await?;
        publish::deleted(txn, &row, Some(replaced_by)).await?;
    }
    Ok(())
}

fn new_image(
    id: i64,
    owner: i64,
    purpose: ImagePurpose,
    processed: &Processed,
    sha256: String,
) -> NewImage {
    let size = |e: &crate::domain::Encoded| (e.width, e.height, e.bytes.len());
    NewImage {
        id,
        owner_id: owner,
        purpose: purpose.as_str(),
        source_type: processed.source.mime(),
        content_type: processed.original.content_type,
        size: size(&processed.original),
        thumbnail: size(&processed.thumbnail),
        medium: size(&processed.medium),
        sha256,
    }
}

async fn put_renditions(state: &AppState, id: i64, processed: Processed) -> Result<()> {
    let objects = &state.objects;
    let original_key = key(id, Rendition::Original);
    let thumbnail_key = key(id, Rendition::Thumbnail);
    let medium_key = key(id, Rendition::Medium);
    futures_util::future::try_join3(
        objects.put(&original_key, processed.original.bytes),
        objects.put(&thumbnail_key, processed.thumbnail.bytes),
        objects.put(&medium_key, processed.medium.bytes),
    )
    .await?;
    Ok(())
}
