//! Likes on posts and comments: one per member per thing, enforced by the primary key.

use sea_orm::{ConnectionTrait, DbErr};

use super::sql;

#[derive(Debug, Clone, Copy)]
pub enum Target {
    Post(i64),
    Comment(i64),
}

impl Target {
    fn table(self) -> (&'static str, &'static str, &'static str, i64) {
        match self {
            Target::Post(id) => ("post_likes", "post_id", "posts", id),
            Target::Comment(id) => ("comment_likes", "comment_id", "comments", id),
        }
    }
}

/// Likes `target`; the new like count if this was a new like, `None` if it already was.
pub async fn like<C: ConnectionTrait>(
    conn: &C,
    target: Target,
    member: i64,
) -> Result<Option<i64>, DbErr> {
    let (table, column, owner, id) = target.table();
    let inserted = conn
        .execute_raw(sql(
            &format!(
                "INSERT INTO {table} ({column}, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            ),
            [id.into(), member.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !inserted {
        return Ok(None);
    }
    bump(conn, owner, id, 1).await.map(Some)
}

/// Cancels a like; the new like count if there was one, `None` if not.
pub async fn unlike<C: ConnectionTrait>(
    conn: &C,
    target: Target,
    member: i64,
) -> Result<Option<i64>, DbErr> {
    let (table, column, owner, id) = target.table();
    let deleted = conn
        .execute_raw(sql(
            &format!("DELETE FROM {table} WHERE {column} = $1 AND member_id = $2"),
            [id.into(), member.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if !deleted {
        return Ok(None);
    }
    bump(conn, owner, id, -1).await.map(Some)
}

async fn bump<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    id: i64,
    delta: i64,
) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(sql(
            &format!(
                "UPDATE {table} SET like_count = like_count + $2 WHERE id = $1 RETURNING like_count"
            ),
            [id.into(), delta.into()],
        ))
        .await?
        .ok_or(DbErr::RecordNotUpdated)?;
    row.try_get("", "like_count")
}

/// Whether `member` likes `target`.
pub async fn likes<C: ConnectionTrait>(
    conn: &C,
    target: Target,
    member: i64,
) -> Result<bool, DbErr> {
    let (table, column, _, id) = target.table();
    Ok(conn
        .query_one_raw(sql(
            &format!("SELECT 1 AS one FROM {table} WHERE {column} = $1 AND member_id = $2"),
            [id.into(), member.into()],
        ))
        .await?
        .is_some())
}
