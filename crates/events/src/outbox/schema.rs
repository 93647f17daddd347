//! The outbox table, as a sea-orm migration each publishing service includes in its own
//! migrator.

use sea_orm_migration::prelude::*;

/// Creates `event_outbox` and its indexes.
pub struct CreateOutbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m20261125_000001_create_event_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE event_outbox (
    id              BIGSERIAL PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    topic           TEXT NOT NULL,
    aggregate_key   TEXT NOT NULL,
    shard           SMALLINT NOT NULL,
    event_type      TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    envelope        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
-- What a relay claims: due rows of one shard, oldest first.
CREATE INDEX event_outbox_due ON event_outbox (shard, id) WHERE status = 'pending';
-- What blocks an aggregate: an older row that is dead or backing off.
CREATE INDEX event_outbox_unsent ON event_outbox (aggregate_key, id) WHERE status <> 'sent';
-- What pruning deletes.
CREATE INDEX event_outbox_sent ON event_outbox (sent_at) WHERE status = 'sent';
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS event_outbox")
            .await?;
        Ok(())
    }
}
