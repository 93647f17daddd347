//! timeline's schema, applied by `timeline migrate` (or at startup with
//! `DATABASE_MIGRATE_ON_START=true`): the read model built from events.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(ReadModel)]
    }
}

struct ReadModel;

impl MigrationName for ReadModel {
    fn name(&self) -> &str {
        "m20261125_000003_timeline_read_model"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReadModel {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
-- One row per post, from POST_* events (or the backfill). `version` orders edits; the
-- counters carry the event time of their last change, so a replayed or late event never
-- moves them backwards. A delete leaves a tombstone that no replayed create revives.
CREATE TABLE timeline_posts (
    post_id       BIGINT PRIMARY KEY,
    author_id     BIGINT NOT NULL,
    title         TEXT,
    excerpt       TEXT NOT NULL,
    image_ids     TEXT[] NOT NULL DEFAULT '{}',
    version       INT NOT NULL,
    like_count    BIGINT NOT NULL DEFAULT 0,
    likes_at      TIMESTAMPTZ,
    comment_count BIGINT NOT NULL DEFAULT 0,
    comments_at   TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ
);
-- Follow feed and my feed: an author's posts, newest first.
CREATE INDEX timeline_posts_author ON timeline_posts (author_id, created_at DESC, post_id DESC)
    WHERE deleted_at IS NULL;
-- Popular and most-commented: the window's posts.
CREATE INDEX timeline_posts_recent ON timeline_posts (created_at DESC)
    WHERE deleted_at IS NULL;

-- Who follows whom, from FOLLOW/UNFOLLOW (last event time wins).
CREATE TABLE timeline_follows (
    follower_id BIGINT NOT NULL,
    followee_id BIGINT NOT NULL,
    active      BOOLEAN NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX timeline_follows_followee ON timeline_follows (followee_id) WHERE active;
"#,
            )
            .await
            .map(|_| ())
    }
}
