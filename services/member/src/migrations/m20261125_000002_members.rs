//! Members, follows, linked OAuth identities and JWT signing keys.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_members"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE members (
    id               BIGSERIAL PRIMARY KEY,
    -- Normalised (trimmed, lower-case). NULL for a member who signed up through a provider
    -- that shared no verified email.
    email            TEXT UNIQUE,
    email_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    -- argon2id PHC string; NULL for provider-only members.
    password_hash    TEXT,
    nickname         TEXT NOT NULL,
    bio              TEXT NOT NULL DEFAULT '',
    profile_image_id TEXT,
    role             TEXT NOT NULL DEFAULT 'USER' CHECK (role IN ('USER', 'ADMIN')),
    followers_count  BIGINT NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    followings_count BIGINT NOT NULL DEFAULT 0 CHECK (followings_count >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE follows (
    follower_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    followee_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
-- Followers of a member, newest first (followings use the primary key's prefix + this order).
CREATE INDEX follows_followee ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_follower ON follows (follower_id, created_at DESC, followee_id DESC);

CREATE TABLE oauth_accounts (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    member_id  BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    email      TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject),
    UNIQUE (member_id, provider)
);

CREATE TABLE jwt_keys (
    kid             TEXT PRIMARY KEY,
    algorithm       TEXT NOT NULL,
    public_key      BYTEA NOT NULL,
    -- 12-byte AES-GCM nonce followed by the sealed private key (JWT_MASTER_KEY).
    private_key_enc BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at      TIMESTAMPTZ,
    active          BOOLEAN NOT NULL DEFAULT TRUE
);
-- At most one key signs at a time.
CREATE UNIQUE INDEX jwt_keys_one_active ON jwt_keys (active) WHERE active;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS jwt_keys, oauth_accounts, follows, members")
            .await?;
        Ok(())
    }
}
