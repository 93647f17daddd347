//! timeline's schema, applied by `timeline migrate` (or at startup with
//! `DATABASE_MIGRATE_ON_START=true`): the read model built from events.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(ReadModel), Box::new(Inbox)]
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

struct Inbox;

impl MigrationName for Inbox {
    fn name(&self) -> &str {
        "m20261130_000004_timeline_inbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Inbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
-- The follow feed pushed at write time (fan-out on write): a row per (reader, post) for the
-- posts of everyone the reader follows, from `complete_since` on. A cursor page is then one
-- range of one reader's rows; older pages are pulled from the followees' own ranges.
CREATE TABLE timeline_inbox (
    member_id  BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    post_id    BIGINT NOT NULL,
    author_id  BIGINT NOT NULL,
    PRIMARY KEY (member_id, created_at, post_id)
);
-- Unfollow removes one author's rows from one reader.
CREATE INDEX timeline_inbox_author ON timeline_inbox (member_id, author_id);

-- Posts created at or after `complete_since` are in every active follower's inbox. Pruning
-- raises it, and deletes rows only below the value it had one prune earlier
-- (`prunable_before`), so a reader holding a slightly stale `complete_since` never reads a
-- range that is being deleted.
CREATE TABLE timeline_inbox_state (
    id              SMALLINT PRIMARY KEY CHECK (id = 1),
    complete_since  TIMESTAMPTZ NOT NULL,
    prunable_before TIMESTAMPTZ NOT NULL,
    pruned_at       TIMESTAMPTZ NOT NULL
);
INSERT INTO timeline_inbox_state (id, complete_since, prunable_before, pruned_at)
VALUES (1, now() - interval '7 days', now() - interval '7 days', now());
INSERT INTO timeline_inbox (member_id, created_at, post_id, author_id)
SELECT f.follower_id, p.created_at, p.post_id, p.author_id
  FROM timeline_follows f JOIN timeline_posts p ON p.author_id = f.followee_id
 WHERE f.active AND p.deleted_at IS NULL
   AND p.created_at >= (SELECT complete_since FROM timeline_inbox_state)
ON CONFLICT DO NOTHING;
"#,
            )
            .await
            .map(|_| ())
    }
}
