//! The read model: `timeline_posts` and `timeline_follows`. Every write is an idempotent
//! upsert guarded by version or event time, so replays and late events change nothing.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, TransactionSession,
    TransactionTrait, Value,
};
use serde::{Deserialize, Serialize};

/// Longest excerpt kept of a post body, in characters.
pub const EXCERPT_CHARS: usize = 280;

/// What an event (or the backfill) says about a post.
pub use contracts::posts::PostSnapshot as PostFacts;

/// One post as feeds show it.
#[derive(Debug, Clone, PartialEq, FromQueryResult, Serialize, Deserialize)]
pub struct FeedRow {
    pub post_id: i64,
    pub author_id: i64,
    pub title: Option<String>,
    pub excerpt: String,
    pub image_ids: Vec<String>,
    pub like_count: i64,
    pub comment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The popularity score (popular list only).
    pub score: Option<f64>,
}

const ROW: &str = "post_id, author_id, title, excerpt, image_ids, like_count, comment_count, \
                   created_at, updated_at";

fn sql(query: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, query, values)
}

fn excerpt(body: &str) -> String {
    let mut chars = body.trim().chars();
    let mut out: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Serialises the writes that touch one author's inbox rows (a post of theirs, a follow of
/// them): without it a post and a new follow committed side by side could each miss the
/// other, leaving the post out of the new follower's inbox.
async fn lock_author<C: ConnectionTrait>(conn: &C, author: i64) -> Result<(), DbErr> {
    conn.execute_raw(sql("SELECT pg_advisory_xact_lock($1)", [author.into()]))
        .await
        .map(|_| ())
}

/// Inserts the post or applies a newer version of it; counters move only forward in event
/// time (`at`). Never revives a deleted post. Pushes it into its author's followers' inboxes.
pub async fn upsert_post<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    post: &PostFacts,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = begin_post_write(conn, post, at).await?;
    fan_out(&txn, post.post_id).await?;
    txn.commit().await
}

/// A transaction holding the author's lock with the post's row written.
async fn begin_post_write<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    post: &PostFacts,
    at: DateTime<Utc>,
) -> Result<C::Transaction, DbErr> {
    let txn = conn.begin().await?;
    lock_author(&txn, post.author_id).await?;
    write_post(&txn, post, at).await?;
    Ok(txn)
}

async fn write_post<C: ConnectionTrait>(
    conn: &C,
    post: &PostFacts,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    conn.execute_raw(sql(
        "INSERT INTO timeline_posts (post_id, author_id, title, excerpt, image_ids, version,
             like_count, likes_at, comment_count, comments_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10, $11)
         ON CONFLICT (post_id) DO UPDATE SET
             title = EXCLUDED.title, excerpt = EXCLUDED.excerpt, image_ids = EXCLUDED.image_ids,
             version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
         WHERE timeline_posts.version < EXCLUDED.version",
        [
            post.post_id.into(),
            post.author_id.into(),
            post.title.clone().into(),
            excerpt(&post.body).into(),
            post.image_ids.clone().into(),
            post.version.into(),
            post.like_count.into(),
            at.into(),
            post.comment_count.into(),
            post.created_at.into(),
            post.updated_at.into(),
        ],
    ))
    .await?;
    set_count(conn, post.post_id, Counter::Likes, post.like_count, at).await?;
    set_count(
        conn,
        post.post_id,
        Counter::Comments,
        post.comment_count,
        at,
    )
    .await
}

/// Puts a (live, recent enough) post into every active follower's inbox; idempotent.
async fn fan_out<C: ConnectionTrait>(conn: &C, post_id: i64) -> Result<(), DbErr> {
    conn.execute_raw(sql(
        "INSERT INTO timeline_inbox (member_id, created_at, post_id, author_id)
         SELECT f.follower_id, p.created_at, p.post_id, p.author_id
           FROM timeline_posts p
           JOIN timeline_follows f ON f.followee_id = p.author_id AND f.active
          WHERE p.post_id = $1 AND p.deleted_at IS NULL
            AND p.created_at >= (SELECT complete_since FROM timeline_inbox_state)
         ON CONFLICT DO NOTHING",
        [post_id.into()],
    ))
    .await
    .map(|_| ())
}

/// Marks the post deleted (a tombstone if it was never seen) and takes it out of inboxes.
pub async fn delete_post<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    post: &PostFacts,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = begin_post_write(conn, post, at).await?;
    txn.execute_raw(sql(
        "UPDATE timeline_posts SET deleted_at = $2 WHERE post_id = $1 AND deleted_at IS NULL",
        [post.post_id.into(), at.into()],
    ))
    .await?;
    txn.execute_raw(sql(
        "DELETE FROM timeline_inbox i USING timeline_posts p, timeline_follows f
          WHERE p.post_id = $1 AND f.followee_id = p.author_id
            AND i.member_id = f.follower_id AND i.created_at = p.created_at
            AND i.post_id = p.post_id",
        [post.post_id.into()],
    ))
    .await?;
    txn.commit().await
}

/// A post's counters, each stamped with the time of the count it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Likes,
    Comments,
}

/// The counter's value as of `at`, unless a later count is already stored.
pub async fn set_count<C: ConnectionTrait>(
    conn: &C,
    post_id: i64,
    counter: Counter,
    count: i64,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let (column, stamp) = match counter {
        Counter::Likes => ("like_count", "likes_at"),
        Counter::Comments => ("comment_count", "comments_at"),
    };
    conn.execute_raw(sql(
        &format!(
            "UPDATE timeline_posts SET {column} = $2, {stamp} = $3
              WHERE post_id = $1 AND ({stamp} IS NULL OR {stamp} < $3)"
        ),
        [post_id.into(), count.max(0).into(), at.into()],
    ))
    .await
    .map(|_| ())
}

/// Follow state as of `at` (the latest event wins); the follower's inbox gets the
/// followee's posts (or loses them) to match whatever state won.
pub async fn set_follow<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    follower: i64,
    followee: i64,
    active: bool,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = conn.begin().await?;
    lock_author(&txn, followee).await?;
    txn.execute_raw(sql(
        "INSERT INTO timeline_follows (follower_id, followee_id, active, changed_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (follower_id, followee_id) DO UPDATE
            SET active = EXCLUDED.active, changed_at = EXCLUDED.changed_at
          WHERE timeline_follows.changed_at < EXCLUDED.changed_at",
        [follower.into(), followee.into(), active.into(), at.into()],
    ))
    .await?;
    // Reconcile with the state that won (a late event changes nothing, a replay redoes it).
    txn.execute_raw(sql(
        "INSERT INTO timeline_inbox (member_id, created_at, post_id, author_id)
         SELECT f.follower_id, p.created_at, p.post_id, p.author_id
           FROM timeline_follows f
           JOIN timeline_posts p ON p.author_id = f.followee_id AND p.deleted_at IS NULL
          WHERE f.follower_id = $1 AND f.followee_id = $2 AND f.active
            AND p.created_at >= (SELECT complete_since FROM timeline_inbox_state)
         ON CONFLICT DO NOTHING",
        [follower.into(), followee.into()],
    ))
    .await?;
    txn.execute_raw(sql(
        "DELETE FROM timeline_inbox i USING timeline_follows f
          WHERE f.follower_id = $1 AND f.followee_id = $2 AND NOT f.active
            AND i.member_id = $1 AND i.author_id = $2",
        [follower.into(), followee.into()],
    ))
    .await?;
    txn.commit().await
}

/// Who follows `author` (for invalidating their cached feeds).
pub async fn followers_of<C: ConnectionTrait>(conn: &C, author: i64) -> Result<Vec<i64>, DbErr> {
    let rows = conn
        .query_all_raw(sql(
            "SELECT follower_id FROM timeline_follows WHERE followee_id = $1 AND active",
            [author.into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "follower_id")).collect()
}

/// Where a newest-first page starts: strictly older than this.
pub type Before = (DateTime<Utc>, i64);

fn start_of(before: Option<Before>) -> Before {
    before.unwrap_or((DateTime::<Utc>::MAX_UTC, i64::MAX))
}

/// Posts of the members `member` follows, newest first: from the member's inbox for posts
/// created at or after `inbox_since` (one index range), then — for a page reaching further
/// back — pulled from the followees' own ranges.
pub async fn following<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    before: Option<Before>,
    fetch: u32,
    inbox_since: DateTime<Utc>,
) -> Result<Vec<FeedRow>, DbErr> {
    let start = start_of(before);
    let boundary: Before = (inbox_since, i64::MIN);
    let mut rows = if start > boundary {
        from_inbox(conn, member, start, inbox_since, fetch).await?
    } else {
        Vec::new()
    };
    let missing = fetch.saturating_sub(u32::try_from(rows.len()).unwrap_or(u32::MAX));
    if missing > 0 {
        rows.extend(pulled(conn, member, start.min(boundary), missing).await?);
    }
    Ok(rows)
}

async fn from_inbox<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    (at, id): Before,
    since: DateTime<Utc>,
    fetch: u32,
) -> Result<Vec<FeedRow>, DbErr> {
    FeedRow::find_by_statement(sql(
        "SELECT p.post_id, p.author_id, p.title, p.excerpt, p.image_ids, p.like_count,
                p.comment_count, p.created_at, p.updated_at, NULL::float8 AS score
           FROM timeline_inbox i JOIN timeline_posts p ON p.post_id = i.post_id
          WHERE i.member_id = $1 AND (i.created_at, i.post_id) < ($2, $3)
            AND i.created_at >= $4 AND p.deleted_at IS NULL
          ORDER BY i.created_at DESC, i.post_id DESC LIMIT $5",
        [
            member.into(),
            at.into(),
            id.into(),
            since.into(),
            i64::from(fetch).into(),
        ],
    ))
    .all(conn)
    .await
}

/// The follow feed before `(at, id)` without the inbox. Each followee contributes at most
/// `fetch` keys `(created_at, post_id)` from its own range of the partial author index (no
/// row is read), the best `fetch` keys win, and only those rows are fetched — so the cost
/// follows the page size and the number of followees, not the number of posts.
async fn pulled<C: ConnectionTrait>(
    conn: &C,
    member: i64,
    (at, id): Before,
    fetch: u32,
) -> Result<Vec<FeedRow>, DbErr> {
    FeedRow::find_by_statement(sql(
        &format!(
            "WITH top AS (
                 SELECT k.post_id, k.created_at FROM timeline_follows f
                 CROSS JOIN LATERAL (
                     SELECT p.post_id, p.created_at FROM timeline_posts p
                      WHERE p.author_id = f.followee_id AND p.deleted_at IS NULL
                        AND (p.created_at, p.post_id) < ($2, $3)
                      ORDER BY p.created_at DESC, p.post_id DESC
                      LIMIT $4) k
                 WHERE f.follower_id = $1 AND f.active
                 ORDER BY k.created_at DESC, k.post_id DESC
                 LIMIT $4)
             SELECT {ROW}, NULL::float8 AS score FROM timeline_posts
             JOIN top USING (post_id, created_at)
             ORDER BY created_at DESC, post_id DESC"
        ),
        [member.into(), at.into(), id.into(), i64::from(fetch).into()],
    ))
    .all(conn)
    .await
}

/// One author's posts, newest first.
pub async fn by_author<C: ConnectionTrait>(
    conn: &C,
    author: i64,
    before: Option<Before>,
    fetch: u32,
) -> Result<Vec<FeedRow>, DbErr> {
    let (at, id) = start_of(before);
    FeedRow::find_by_statement(sql(
        &format!(
            "SELECT {ROW}, NULL::float8 AS score FROM timeline_posts
              WHERE author_id = $1 AND deleted_at IS NULL AND (created_at, post_id) < ($2, $3)
              ORDER BY created_at DESC, post_id DESC LIMIT $4"
        ),
        [author.into(), at.into(), id.into(), i64::from(fetch).into()],
    ))
    .all(conn)
    .await
}

/// The hot rank of a post at `$1` (Lemmy's): `log10(max(1, 3 + likes + 2·comments)) /
/// (hours since posted + 2)^1.8` — engagement counts logarithmically, age decays it.
const HOT_RANK: &str = "(LOG(GREATEST(1, 3 + like_count + 2 * comment_count)::float8)
     / POWER(GREATEST(EXTRACT(EPOCH FROM ($1::timestamptz - created_at))::float8, 0) / 3600.0 + 2, 1.8))";

/// The window's posts by hot rank as of `as_of`, best first; ties by newer id.
pub async fn popular<C: ConnectionTrait>(
    conn: &C,
    as_of: DateTime<Utc>,
    since: DateTime<Utc>,
    after: Option<(f64, i64)>,
    fetch: u32,
) -> Result<Vec<FeedRow>, DbErr> {
    let (score, id) = after.unwrap_or((f64::INFINITY, i64::MAX));
    FeedRow::find_by_statement(sql(
        &format!(
            "SELECT * FROM (
                 SELECT {ROW}, {HOT_RANK} AS score FROM timeline_posts
                  WHERE deleted_at IS NULL AND created_at >= $2 AND created_at <= $1) ranked
              WHERE score < $3 OR (score = $3 AND post_id < $4)
              ORDER BY score DESC, post_id DESC LIMIT $5"
        ),
        [
            as_of.into(),
            since.into(),
            score.into(),
            id.into(),
            i64::from(fetch).into(),
        ],
    ))
    .all(conn)
    .await
}

/// The window's commented posts, most comments first; ties by newer id.
pub async fn most_commented<C: ConnectionTrait>(
    conn: &C,
    since: DateTime<Utc>,
    after: Option<(i64, i64)>,
    fetch: u32,
) -> Result<Vec<FeedRow>, DbErr> {
    let (count, id) = after.unwrap_or((i64::MAX, i64::MAX));
    FeedRow::find_by_statement(sql(
        &format!(
            "SELECT {ROW}, NULL::float8 AS score FROM timeline_posts
              WHERE deleted_at IS NULL AND created_at >= $1 AND comment_count > 0
                AND (comment_count, post_id) < ($2, $3)
              ORDER BY comment_count DESC, post_id DESC LIMIT $4"
        ),
        [
            since.into(),
            count.into(),
            id.into(),
            i64::from(fetch).into(),
        ],
    ))
    .all(conn)
    .await
}

/// Posts created at or after this are in every active follower's inbox.
pub async fn inbox_complete_since<C: ConnectionTrait>(conn: &C) -> Result<DateTime<Utc>, DbErr> {
    let row = conn
        .query_one_raw(sql(
            "SELECT complete_since FROM timeline_inbox_state WHERE id = 1",
            [],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("timeline_inbox_state".into()))?;
    row.try_get("", "complete_since")
}

/// Retention: inbox rows older than `keep` stop being read now (`complete_since` rises) and
/// are deleted by the next prune — at most one prune per 10 minutes whatever the number of
/// replicas, so readers (who refresh `complete_since` every 10 s) never read a range being
/// deleted. Returns the rows deleted (`None`: another prune ran too recently).
pub async fn prune_inbox<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    keep: chrono::Duration,
) -> Result<Option<u64>, DbErr> {
    let txn = conn.begin().await?;
    let due = txn
        .query_one_raw(sql(
            "UPDATE timeline_inbox_state s
                SET prunable_before = s.complete_since,
                    complete_since = GREATEST(s.complete_since, $1),
                    pruned_at = now()
               FROM timeline_inbox_state old
              WHERE s.id = 1 AND old.id = 1 AND s.pruned_at < now() - interval '10 minutes'
          RETURNING old.prunable_before",
            [(Utc::now() - keep).into()],
        ))
        .await?;
    let Some(row) = due else {
        return Ok(None);
    };
    let below: DateTime<Utc> = row.try_get("", "prunable_before")?;
    let deleted = txn
        .execute_raw(sql(
            "DELETE FROM timeline_inbox WHERE created_at < $1",
            [below.into()],
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(Some(deleted))
}

/// Everything in the read model, for comparing two builds of it (tests, support).
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Snapshot {
    pub post_id: i64,
    pub author_id: i64,
    pub title: Option<String>,
    pub excerpt: String,
    pub like_count: i64,
    pub comment_count: i64,
    pub deleted: bool,
}

/// The read model: live posts, active follows, and every inbox row as (reader, post).
pub type ReadModel = (Vec<Snapshot>, Vec<(i64, i64)>, Vec<(i64, i64)>);

pub async fn snapshot<C: ConnectionTrait>(conn: &C) -> Result<ReadModel, DbErr> {
    let posts = Snapshot::find_by_statement(sql(
        "SELECT post_id, author_id, title, excerpt, like_count, comment_count,
                deleted_at IS NOT NULL AS deleted
           FROM timeline_posts WHERE deleted_at IS NULL ORDER BY post_id",
        [],
    ))
    .all(conn)
    .await?;
    let pairs = |query: &'static str, a: &'static str, b: &'static str| async move {
        conn.query_all_raw(sql(query, []))
            .await?
            .iter()
            .map(|r| Ok((r.try_get("", a)?, r.try_get("", b)?)))
            .collect::<Result<Vec<(i64, i64)>, DbErr>>()
    };
    let follows = pairs(
        "SELECT follower_id, followee_id FROM timeline_follows WHERE active
          ORDER BY follower_id, followee_id",
        "follower_id",
        "followee_id",
    )
    .await?;
    let inbox = pairs(
        "SELECT member_id, post_id FROM timeline_inbox ORDER BY member_id, post_id",
        "member_id",
        "post_id",
    )
    .await?;
    Ok((posts, follows, inbox))
}
