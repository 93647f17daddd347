//! Serving image bytes (public, no token). The bytes under an id never change, so answers
//! carry `Cache-Control: public, max-age=…, immutable` and an ETag from the upload's hash;
//! a matching `If-None-Match` gets 304 without touching object storage.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use contracts::ErrorBody;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ImageError, Result};
use crate::state::AppState;
use crate::store::images::{self, ImageRow};
use crate::store::objects::{Rendition, key};

/// The original: upright, without EXIF.
#[utoipa::path(get, path = "/api/v1/images/{id}", tag = "images", params(("id" = i64, Path),
        ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer")),
    responses(
        (status = 200, description = "the bytes, `image/jpeg` or `image/png`", content_type = "image/*"),
        (status = 304, description = "unchanged since the ETag given"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn original(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    serve(&req, &state, id.into_inner(), Rendition::Original).await
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThumbnailSize {
    /// Fits in `IMAGE_THUMBNAIL_PX` (default 256).
    #[default]
    Small,
    /// Fits in `IMAGE_MEDIUM_PX` (default 1024).
    Medium,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailQuery {
    /// `small` (the default) or `medium`.
    pub size: Option<ThumbnailSize>,
}

/// A JPEG thumbnail: `small` (the default) or `medium`.
#[utoipa::path(get, path = "/api/v1/images/{id}/thumbnail", tag = "images",
    params(("id" = i64, Path), ThumbnailQuery,
        ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer")),
    responses(
        (status = 200, description = "the JPEG bytes", content_type = "image/jpeg"),
        (status = 304, description = "unchanged since the ETag given"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn thumbnail(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<ThumbnailQuery>,
) -> Result<HttpResponse> {
    let rendition = match query.size.unwrap_or_default() {
        ThumbnailSize::Small => Rendition::Thumbnail,
        ThumbnailSize::Medium => Rendition::Medium,
    };
    serve(&req, &state, id.into_inner(), rendition).await
}

async fn serve(
    req: &HttpRequest,
    state: &AppState,
    id: i64,
    rendition: Rendition,
) -> Result<HttpResponse> {
    let row = images::find(&state.db, id, false)
        .await?
        .ok_or(ImageError::NotFound)?;
    let etag = etag(&row, rendition);
    let cache = format!(
        "public, max-age={}, immutable",
        state.cache_max_age.as_secs()
    );
    if matches_etag(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let download = state
        .objects
        .get(&key(id, rendition))
        .await?
        .ok_or_else(|| {
            ImageError::Internal(anyhow::anyhow!(
                "image {id} has a row but no {} object",
                rendition.as_str()
            ))
        })?;
    let content_type = match rendition {
        Rendition::Original => row.content_type.as_str(),
        Rendition::Thumbnail | Rendition::Medium => "image/jpeg",
    };
    let body = SizedStream::new(download.size, download.stream);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .body(body))
}

/// Strong ETag: the upload's hash (which fixes every rendition's bytes) and the rendition.
fn etag(row: &ImageRow, rendition: Rendition) -> String {
    let hash = row.sha256.get(..32).unwrap_or(&row.sha256);
    format!("\"{hash}-{}-{}\"", row.id, rendition.as_str())
}

/// `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for this header) or `*`.
fn matches_etag(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}
