//! The `follows` table and the follower/following counters kept beside it.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};

/// One edge of a follow list page.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Edge {
    pub member_id: i64,
    pub created_at: DateTime<Utc>,
}

/// Inserts the follow; `true` if it is new (counters are updated in the same statement
/// batch — call inside a transaction).
pub async fn follow<C: ConnectionTrait>(
    conn: &C,
    follower: i64,
    followee: i64,
) -> Result<bool, DbErr> {
    let inserted = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [follower.into(), followee.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if inserted {
        adjust_counts(conn, follower, followee, 1).await?;
    }
    Ok(inserted)
}

/// Deletes the follow; `true` if there was one.
pub async fn unfollow<C: ConnectionTrait>(
    conn: &C,
    follower: i64,
    followee: i64,
) -> Result<bool, DbErr> {
    let deleted = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2",
            [follower.into(), followee.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if deleted {
        adjust_counts(conn, follower, followee, -1).await?;
    }
    Ok(deleted)
}

async fn adjust_counts<C: ConnectionTrait>(
    conn: &C,
    follower: i64,
    followee: i64,
    delta: i64,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE members SET
            followings_count = followings_count + CASE WHEN id = $1 THEN $3 ELSE 0 END,
            followers_count  = followers_count  + CASE WHEN id = $2 THEN $3 ELSE 0 END
          WHERE id IN ($1, $2)",
        [follower.into(), followee.into(), delta.into()],
    ))
    .await?;
    Ok(())
}

/// Which side of the edge a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Members who follow `member`.
    Followers,
    /// Members `member` follows.
    Followings,
}

/// A page of a follow list, newest first, after `(created_at, member_id)` if given.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    direction: Direction,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u32,
) -> Result<Vec<Edge>, DbErr> {
    let (mine, other) = match direction {
        Direction::Followers => ("followee_id", "follower_id"),
        Direction::Followings => ("follower_id", "followee_id"),
    };
    let (after_at, after_id) = (after.map(|a| a.0), after.map(|a| a.1));
    let sql = format!(
        "SELECT {other} AS member_id, created_at FROM follows
          WHERE {mine} = $1
            AND ($2::timestamptz IS NULL OR (created_at, {other}) < ($2, $3))
          ORDER BY created_at DESC, {other} DESC
          LIMIT $4"
    );
    Edge::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [
            member.into(),
            after_at.into(),
            after_id.into(),
            i64::from(limit).into(),
        ],
    ))
    .all(conn)
    .await
}

/// One follow, for rebuilding other services' read models.
#[derive(Debug, Clone, FromQueryResult, serde::Serialize, utoipa::ToSchema)]
pub struct FollowRow {
    pub follower_id: i64,
    pub followee_id: i64,
    pub created_at: DateTime<Utc>,
}

/// Every follow after `(follower, followee)` in key order, `limit` at a time.
pub async fn all_after<C: ConnectionTrait>(
    conn: &C,
    after: (i64, i64),
    limit: u32,
) -> Result<Vec<FollowRow>, DbErr> {
    FollowRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT follower_id, followee_id, created_at FROM follows
          WHERE (follower_id, followee_id) > ($1, $2)
          ORDER BY follower_id, followee_id LIMIT $3",
        [after.0.into(), after.1.into(), i64::from(limit).into()],
    ))
    .all(conn)
    .await
}

/// Every member `member` follows (for other services' feeds; bounded by the caller).
pub async fn followings_ids<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    limit: u32,
) -> Result<Vec<i64>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT followee_id FROM follows WHERE follower_id = $1 ORDER BY created_at DESC LIMIT $2",
            [member.into(), i64::from(limit).into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "followee_id")).collect()
}

/// Whether `follower` follows `followee`.
pub async fn exists<C: ConnectionTrait>(
    conn: &C,
    follower: i64,
    followee: i64,
) -> Result<bool, DbErr> {
    Ok(conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 AS one FROM follows WHERE follower_id = $1 AND followee_id = $2",
            [follower.into(), followee.into()],
        ))
        .await?
        .is_some())
}
