//! Posts (with edit history), comments and replies, likes, idempotency keys.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_content"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE posts (
    id            BIGSERIAL PRIMARY KEY,
    author_id     BIGINT NOT NULL CHECK (author_id > 0),
    title         TEXT,
    body          TEXT NOT NULL,
    image_ids     TEXT[] NOT NULL DEFAULT '{}',
    like_count    BIGINT NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count BIGINT NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    version       INT NOT NULL DEFAULT 1,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
-- An author's posts, newest first (my feed source).
CREATE INDEX posts_author ON posts (author_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Earlier versions of edited posts (edit history).
CREATE TABLE post_versions (
    post_id    BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    version    INT NOT NULL,
    title      TEXT,
    body       TEXT NOT NULL,
    image_ids  TEXT[] NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (post_id, version)
);

CREATE TABLE comments (
    id          BIGSERIAL PRIMARY KEY,
    post_id     BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- A reply's comment; replies are one level deep (a reply's parent has no parent).
    parent_id   BIGINT REFERENCES comments (id) ON DELETE CASCADE,
    author_id   BIGINT NOT NULL CHECK (author_id > 0),
    body        TEXT NOT NULL,
    like_count  BIGINT NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    reply_count BIGINT NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX comments_of_post ON comments (post_id, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX replies_of_comment ON comments (parent_id, created_at, id) WHERE parent_id IS NOT NULL;

CREATE TABLE post_likes (
    post_id    BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    member_id  BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, member_id)
);

CREATE TABLE comment_likes (
    comment_id BIGINT NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    member_id  BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, member_id)
);

-- A retried create (same Idempotency-Key) answers the first result.
CREATE TABLE idempotency_keys (
    member_id       BIGINT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status SMALLINT NOT NULL,
    response_body   JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE IF EXISTS idempotency_keys, comment_likes, post_likes, comments, post_versions, posts",
            )
            .await?;
        Ok(())
    }
}
