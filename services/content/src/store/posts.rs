//! Posts and their edit history.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::Serialize;
use utoipa::ToSchema;

use super::sql;

/// A post as the API shows it.
#[derive(Debug, Clone, Serialize, FromQueryResult, ToSchema)]
pub struct Post {
    pub id: i64,
    pub author_id: i64,
    pub title: Option<String>,
    pub body: String,
    pub image_ids: Vec<String>,
    pub like_count: i64,
    pub comment_count: i64,
    /// 1 for a post never edited; each edit adds one (see `/history`).
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub deleted_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, author_id, title, body, image_ids, like_count, comment_count, version, created_at, updated_at, deleted_at";

pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    author: i64,
    title: Option<&str>,
    body: &str,
    images: &[String],
) -> Result<Post, DbErr> {
    Post::find_by_statement(sql(
        &format!("INSERT INTO posts (author_id, title, body, image_ids) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"),
        [author.into(), title.map(str::to_owned).into(), body.into(), images.to_vec().into()],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| DbErr::RecordNotInserted)
}

/// The post, deleted or not; `lock` takes a row lock for an update in the same transaction.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    lock: bool,
) -> Result<Option<Post>, DbErr> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    Post::find_by_statement(sql(
        &format!("SELECT {COLUMNS} FROM posts WHERE id = $1{suffix}"),
        [id.into()],
    ))
    .one(conn)
    .await
}

/// A live (not deleted) post.
pub async fn live<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Option<Post>, DbErr> {
    Ok(find(conn, id, false)
        .await?
        .filter(|p| p.deleted_at.is_none()))
}

/// Saves the current text as a history version and applies the edit.
pub async fn edit<C: ConnectionTrait>(
    conn: &C,
    current: &Post,
    title: Option<&str>,
    body: &str,
    images: &[String],
) -> Result<Post, DbErr> {
    conn.execute_raw(sql(
        "INSERT INTO post_versions (post_id, version, title, body, image_ids, valid_from, valid_to)
         VALUES ($1, $2, $3, $4, $5, $6, now())",
        [
            current.id.into(),
            current.version.into(),
            current.title.clone().into(),
            current.body.clone().into(),
            current.image_ids.clone().into(),
            current.updated_at.into(),
        ],
    ))
    .await?;
    Post::find_by_statement(sql(
        &format!(
            "UPDATE posts SET title = $2, body = $3, image_ids = $4, version = version + 1, updated_at = now()
              WHERE id = $1 RETURNING {COLUMNS}"
        ),
        [current.id.into(), title.map(str::to_owned).into(), body.into(), images.to_vec().into()],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| DbErr::RecordNotUpdated)
}

pub async fn soft_delete<C: ConnectionTrait>(conn: &C, id: i64) -> Result<(), DbErr> {
    conn.execute_raw(sql(
        "UPDATE posts SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
        [id.into()],
    ))
    .await?;
    Ok(())
}

/// One earlier version of a post.
#[derive(Debug, Clone, Serialize, FromQueryResult, ToSchema)]
pub struct PostVersion {
    pub version: i32,
    pub title: Option<String>,
    pub body: String,
    pub image_ids: Vec<String>,
    /// When this version was published and when an edit replaced it.
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
}

pub async fn history<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Vec<PostVersion>, DbErr> {
    PostVersion::find_by_statement(sql(
        "SELECT version, title, body, image_ids, valid_from, valid_to FROM post_versions
          WHERE post_id = $1 ORDER BY version DESC",
        [id.into()],
    ))
    .all(conn)
    .await
}

/// An author's live posts, newest first, after `(created_at, id)`.
pub async fn by_author<C: ConnectionTrait>(
    conn: &C,
    author: i64,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u32,
) -> Result<Vec<Post>, DbErr> {
    Post::find_by_statement(sql(
        &format!(
            "SELECT {COLUMNS} FROM posts
              WHERE author_id = $1 AND deleted_at IS NULL
                AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
              ORDER BY created_at DESC, id DESC LIMIT $4"
        ),
        [
            author.into(),
            after.map(|a| a.0).into(),
            after.map(|a| a.1).into(),
            i64::from(limit).into(),
        ],
    ))
    .all(conn)
    .await
}

/// Every live post in id order after `after` (for index rebuilds and backfills).
pub async fn page_all<C: ConnectionTrait>(
    conn: &C,
    after: i64,
    limit: u32,
) -> Result<Vec<Post>, DbErr> {
    Post::find_by_statement(sql(
        &format!(
            "SELECT {COLUMNS} FROM posts WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2"
        ),
        [after.into(), i64::from(limit).into()],
    ))
    .all(conn)
    .await
}

/// Adds `delta` to a post's like or comment counter; returns the new value.
pub async fn bump<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    column: Counter,
    delta: i64,
) -> Result<i64, DbErr> {
    let column = match column {
        Counter::Likes => "like_count",
        Counter::Comments => "comment_count",
    };
    let row = conn
        .query_one_raw(sql(
            &format!(
                "UPDATE posts SET {column} = {column} + $2 WHERE id = $1 RETURNING {column} AS n"
            ),
            [id.into(), delta.into()],
        ))
        .await?
        .ok_or(DbErr::RecordNotUpdated)?;
    row.try_get("", "n")
}

#[derive(Debug, Clone, Copy)]
pub enum Counter {
    Likes,
    Comments,
}
