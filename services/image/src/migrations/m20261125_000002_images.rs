//! Image metadata: who owns it, what it is for, its renditions' sizes, and the hash that
//! dedups identical uploads by the same owner.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_images"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE images (
    -- Random, not sequential: image URLs are public and must not be enumerable.
    id               BIGINT PRIMARY KEY CHECK (id > 0),
    owner_id         BIGINT NOT NULL CHECK (owner_id > 0),
    purpose          TEXT NOT NULL CHECK (purpose IN ('profile', 'post')),
    -- What was uploaded (decided from its bytes) and what is served as the original.
    source_type      TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    width            INT NOT NULL CHECK (width > 0),
    height           INT NOT NULL CHECK (height > 0),
    bytes            BIGINT NOT NULL,
    thumbnail_width  INT NOT NULL,
    thumbnail_height INT NOT NULL,
    thumbnail_bytes  BIGINT NOT NULL,
    medium_width     INT NOT NULL,
    medium_height    INT NOT NULL,
    medium_bytes     BIGINT NOT NULL,
    -- SHA-256 (hex) of the uploaded bytes.
    sha256           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner_id, purpose, sha256)
);
CREATE INDEX images_owner ON images (owner_id, created_at DESC);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS images")
            .await?;
        Ok(())
    }
}
