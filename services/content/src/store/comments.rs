//! Comments and one level of replies.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::Serialize;
use utoipa::ToSchema;

use super::sql;

#[derive(Debug, Clone, FromQueryResult)]
pub struct CommentRow {
    pub id: i64,
    pub post_id: i64,
    pub parent_id: Option<i64>,
    pub author_id: i64,
    pub body: String,
    pub like_count: i64,
    pub reply_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A comment as the API shows it: a deleted comment that still has replies keeps its place
/// with `deleted: true` and no body or author.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    pub id: i64,
    pub post_id: i64,
    pub parent_id: Option<i64>,
    pub author_id: Option<i64>,
    pub body: Option<String>,
    pub deleted: bool,
    pub like_count: i64,
    pub reply_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CommentRow> for Comment {
    fn from(row: CommentRow) -> Self {
        let deleted = row.deleted_at.is_some();
        Self {
            id: row.id,
            post_id: row.post_id,
            parent_id: row.parent_id,
            author_id: (!deleted).then_some(row.author_id),
            body: (!deleted).then_some(row.body),
            deleted,
            like_count: row.like_count,
            reply_count: row.reply_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "id, post_id, parent_id, author_id, body, like_count, reply_count, created_at, updated_at, deleted_at";

pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    post: i64,
    parent: Option<i64>,
    author: i64,
    body: &str,
) -> Result<CommentRow, DbErr> {
    let row = CommentRow::find_by_statement(sql(
        &format!("INSERT INTO comments (post_id, parent_id, author_id, body) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"),
        [post.into(), parent.into(), author.into(), body.into()],
    ))
    .one(conn)
    .await?
    .ok_or(DbErr::RecordNotInserted)?;
    if let Some(parent) = parent {
        conn.execute_raw(sql(
            "UPDATE comments SET reply_count = reply_count + 1 WHERE id = $1",
            [parent.into()],
        ))
        .await?;
    }
    Ok(row)
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    lock: bool,
) -> Result<Option<CommentRow>, DbErr> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    CommentRow::find_by_statement(sql(
        &format!("SELECT {COLUMNS} FROM comments WHERE id = $1{suffix}"),
        [id.into()],
    ))
    .one(conn)
    .await
}

pub async fn edit<C: ConnectionTrait>(conn: &C, id: i64, body: &str) -> Result<CommentRow, DbErr> {
    CommentRow::find_by_statement(sql(
        &format!(
            "UPDATE comments SET body = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        ),
        [id.into(), body.into()],
    ))
    .one(conn)
    .await?
    .ok_or(DbErr::RecordNotUpdated)
}

/// Soft-deletes a comment and, for a reply, decrements its parent's reply count.
pub async fn soft_delete<C: ConnectionTrait>(conn: &C, row: &CommentRow) -> Result<(), DbErr> {
    conn.execute_raw(sql(
        "UPDATE comments SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
        [row.id.into()],
    ))
    .await?;
    if let Some(parent) = row.parent_id {
        conn.execute_raw(sql(
            "UPDATE comments SET reply_count = GREATEST(reply_count - 1, 0) WHERE id = $1",
            [parent.into()],
        ))
        .await?;
    }
    Ok(())
}

/// A post's top-level comments, or a comment's replies, oldest first after
/// `(created_at, id)`. Deleted comments are left out unless they still have replies.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    of: Thread,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u32,
) -> Result<Vec<CommentRow>, DbErr> {
    let (filter, id) = match of {
        Thread::Post(id) => ("post_id = $1 AND parent_id IS NULL", id),
        Thread::Replies(id) => ("parent_id = $1", id),
    };
    CommentRow::find_by_statement(sql(
        &format!(
            "SELECT {COLUMNS} FROM comments
              WHERE {filter}
                AND (deleted_at IS NULL OR reply_count > 0)
                AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
              ORDER BY created_at, id LIMIT $4"
        ),
        [
            id.into(),
            after.map(|a| a.0).into(),
            after.map(|a| a.1).into(),
            i64::from(limit).into(),
        ],
    ))
    .all(conn)
    .await
}

#[derive(Debug, Clone, Copy)]
pub enum Thread {
    Post(i64),
    Replies(i64),
}
