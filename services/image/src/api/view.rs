//! How an image looks in API answers.

use chrono::{DateTime, Utc};
use contracts::images::ImagePurpose;
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::images::ImageRow;

/// One rendition of an image and where to fetch it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenditionView {
    #[schema(example = "/api/v1/images/4503599627370497/thumbnail")]
    pub url: String,
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
}

/// A stored image.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    /// Random, below 2^53 (safe as a JSON number in JavaScript).
    #[schema(example = 4503599627370497_i64)]
    pub id: i64,
    pub owner_id: i64,
    pub purpose: ImagePurpose,
    /// What was uploaded, decided from its bytes.
    #[schema(example = "image/png")]
    pub source_type: String,
    /// The full-size image as served: upright, without EXIF.
    #[schema(example = "/api/v1/images/4503599627370497")]
    pub url: String,
    /// `image/jpeg` (from JPEG or WebP without transparency) or `image/png`.
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    /// Fits in `IMAGE_THUMBNAIL_PX` (default 256) square, JPEG.
    pub thumbnail: RenditionView,
    /// Fits in `IMAGE_MEDIUM_PX` (default 1024) square, JPEG.
    pub medium: RenditionView,
    /// SHA-256 (hex) of the uploaded bytes.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

pub fn path(id: i64) -> String {
    format!("/api/v1/images/{id}")
}

impl From<&ImageRow> for ImageView {
    fn from(row: &ImageRow) -> Self {
        let base = path(row.id);
        Self {
            id: row.id,
            owner_id: row.owner_id,
            purpose: row.purpose(),
            source_type: row.source_type.clone(),
            url: base.clone(),
            content_type: row.content_type.clone(),
            width: row.width,
            height: row.height,
            bytes: row.bytes,
            thumbnail: RenditionView {
                url: format!("{base}/thumbnail"),
                content_type: "image/jpeg".into(),
                width: row.thumbnail_width,
                height: row.thumbnail_height,
                bytes: row.thumbnail_bytes,
            },
            medium: RenditionView {
                url: format!("{base}/thumbnail?size=medium"),
                content_type: "image/jpeg".into(),
                width: row.medium_width,
                height: row.medium_height,
                bytes: row.medium_bytes,
            },
            sha256: row.sha256.clone(),
            created_at: row.created_at,
        }
    }
}
