//! What image publishes: IMAGE_UPLOAD and IMAGE_DELETE on `image-events-yyyyMMdd`, keyed
//! `member:{owner}` so one member's changes (a profile image replaced: upload, then delete)
//! reach consumers in order. Appended in the transaction that changes the metadata.

use contracts::images::{ImageDeleted, ImageUploaded};
use contracts::{EventEnvelope, EventType};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::store::images::ImageRow;

fn key(owner_id: i64) -> String {
    format!("member:{owner_id}")
}

pub async fn uploaded(
    txn: &DatabaseTransaction,
    row: &ImageRow,
    replaces: Option<i64>,
) -> Result<(), DbErr> {
    let payload = ImageUploaded {
        image_id: row.id,
        owner_id: row.owner_id,
        purpose: row.purpose(),
        content_type: row.content_type.clone(),
        width: u32::try_from(row.width).unwrap_or(0),
        height: u32::try_from(row.height).unwrap_or(0),
        replaces,
        created_at: row.created_at,
    };
    let event = EventEnvelope::new(EventType::ImageUpload, row.owner_id, row.id, payload);
    ::events::append(txn, &event, &key(row.owner_id)).await
}

pub async fn deleted(
    txn: &DatabaseTransaction,
    row: &ImageRow,
    replaced_by: Option<i64>,
) -> Result<(), DbErr> {
    let payload = ImageDeleted {
        image_id: row.id,
        owner_id: row.owner_id,
        purpose: row.purpose(),
        replaced_by,
    };
    let event = EventEnvelope::new(EventType::ImageDelete, row.owner_id, row.id, payload);
    ::events::append(txn, &event, &key(row.owner_id)).await
}
