//! Image metadata rows. Write functions take the caller's transaction so the row and its
//! outbox event commit together.

use chrono::{DateTime, Utc};
use contracts::images::ImagePurpose;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};

use super::sql;

/// One stored image.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ImageRow {
    pub id: i64,
    pub owner_id: i64,
    pub purpose: String,
    pub source_type: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub thumbnail_width: i32,
    pub thumbnail_height: i32,
    pub thumbnail_bytes: i64,
    pub medium_width: i32,
    pub medium_height: i32,
    pub medium_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

impl ImageRow {
    /// The stored purpose (the column's CHECK allows only the two).
    pub fn purpose(&self) -> ImagePurpose {
        self.purpose.parse().unwrap_or(ImagePurpose::Post)
    }
}

const COLUMNS: &str = "id, owner_id, purpose, source_type, content_type, width, height, bytes, \
    thumbnail_width, thumbnail_height, thumbnail_bytes, medium_width, medium_height, medium_bytes, \
    sha256, created_at";

/// A row to insert (everything but `created_at`).
#[derive(Debug, Clone)]
pub struct NewImage {
    pub id: i64,
    pub owner_id: i64,
    pub purpose: &'static str,
    pub source_type: &'static str,
    pub content_type: &'static str,
    pub size: (u32, u32, usize),
    pub thumbnail: (u32, u32, usize),
    pub medium: (u32, u32, usize),
    pub sha256: String,
}

fn int(n: u32) -> sea_orm::Value {
    i32::try_from(n).unwrap_or(i32::MAX).into()
}

fn big(n: usize) -> sea_orm::Value {
    i64::try_from(n).unwrap_or(i64::MAX).into()
}

/// Inserts the row; `None` when the owner already has these bytes for this purpose.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    new: &NewImage,
) -> Result<Option<ImageRow>, DbErr> {
    ImageRow::find_by_statement(sql(
        &format!(
            "INSERT INTO images (id, owner_id, purpose, source_type, content_type, width, height, bytes,
                 thumbnail_width, thumbnail_height, thumbnail_bytes, medium_width, medium_height,
                 medium_bytes, sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (owner_id, purpose, sha256) DO NOTHING
             RETURNING {COLUMNS}"
        ),
        [
            new.id.into(),
            new.owner_id.into(),
            new.purpose.into(),
            new.source_type.into(),
            new.content_type.into(),
            int(new.size.0),
            int(new.size.1),
            big(new.size.2),
            int(new.thumbnail.0),
            int(new.thumbnail.1),
            big(new.thumbnail.2),
            int(new.medium.0),
            int(new.medium.1),
            big(new.medium.2),
            new.sha256.clone().into(),
        ],
    ))
    .one(conn)
    .await
}

/// The image, if it exists; `lock` takes a row lock for a change in the same transaction.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    lock: bool,
) -> Result<Option<ImageRow>, DbErr> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    ImageRow::find_by_statement(sql(
        &format!("SELECT {COLUMNS} FROM images WHERE id = $1{suffix}"),
        [id.into()],
    ))
    .one(conn)
    .await
}

/// The owner's earlier upload of the same bytes for the same purpose.
pub async fn find_duplicate<C: ConnectionTrait>(
    conn: &C,
    owner_id: i64,
    purpose: &str,
    sha256: &str,
) -> Result<Option<ImageRow>, DbErr> {
    ImageRow::find_by_statement(sql(
        &format!(
            "SELECT {COLUMNS} FROM images WHERE owner_id = $1 AND purpose = $2 AND sha256 = $3"
        ),
        [owner_id.into(), purpose.into(), sha256.into()],
    ))
    .one(conn)
    .await
}

pub async fn delete<C: ConnectionTrait>(conn: &C, id: i64) -> Result<(), DbErr> {
    conn.execute_raw(sql("DELETE FROM images WHERE id = $1", [id.into()]))
        .await?;
    Ok(())
}
