//! The four feeds: cursor paging over the read model, cache-aside for the hot first pages,
//! authors attached at the end.
//!
//! Cached (Redis, `{REDIS_KEY_PREFIX}timeline:…`): first pages of the default size (21 rows:
//! any `limit` up to 20 is served from one entry; larger first pages go to the database):
//! - `following:{member}` for `FEED_CACHE_SECONDS` (60); dropped when a followee posts,
//!   edits or deletes and when the member follows or unfollows.
//! - `popular:{window}` and `most-commented:{window}` for `HOT_CACHE_SECONDS` (30); dropped
//!   when any post is edited or deleted, so a deleted post never outlives its event.
//! - `/me` is not cached: it is one index range, and read-after-write must hold.
//!
//! In front of Redis, each process keeps the finished bodies of those first pages for
//! `TIMELINE_LOCAL_CACHE_MILLIS` (1000): see `Cache::local_page`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use pagination::{CursorCodec, DEFAULT_LIMIT, Page, PageQuery};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;

use crate::cache::SingleFlight;
use crate::state::AppState;
use crate::store::{self, FeedRow};

/// Rows kept per cached first page: a default-sized page plus one to know there is more.
/// First pages asking for more than the default go to the database (rare; keeps every hit
/// small to fetch and parse).
const CACHED_ROWS: u32 = DEFAULT_LIMIT + 1;

/// The windows popular and most-commented accept.
pub const WINDOWS: [(&str, i64); 5] = [
    ("1h", 3600),
    ("6h", 6 * 3600),
    ("24h", 24 * 3600),
    ("7d", 7 * 24 * 3600),
    ("30d", 30 * 24 * 3600),
];

pub fn parse_window(raw: Option<&str>) -> Result<(&'static str, ChronoDuration), HttpError> {
    let raw = raw.unwrap_or("24h");
    WINDOWS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(raw))
        .map(|(name, secs)| (*name, ChronoDuration::seconds(*secs)))
        .ok_or_else(|| {
            HttpError::bad_request(format!("unknown window: {raw}"))
                .with_field("window", "one of 1h, 6h, 24h, 7d, 30d")
        })
}

pub fn following_cache_name(member: i64) -> String {
    format!("following:{member}")
}

fn popular_name(window: &str) -> String {
    format!("popular:{window}")
}

fn commented_name(window: &str) -> String {
    format!("most-commented:{window}")
}

/// The cache name of popular's first page for a requested window (`None` if invalid).
pub fn popular_cache_name(window: Option<&str>) -> Option<String> {
    parse_window(window).ok().map(|(w, _)| popular_name(w))
}

/// The cache name of most-commented's first page for a requested window.
pub fn commented_cache_name(window: Option<&str>) -> Option<String> {
    parse_window(window).ok().map(|(w, _)| commented_name(w))
}

/// Every hot-list cache entry (dropped on edits and deletes).
pub fn hot_cache_names() -> Vec<String> {
    WINDOWS
        .iter()
        .flat_map(|(w, _)| [popular_name(w), commented_name(w)])
        .collect()
}

/// The inbox's `complete_since`, read from the database at most every 10 s (pruning
/// deletes rows only a full prune interval after it raised the value, so a copy this old is
/// always safe to read by).
#[derive(Default)]
pub struct InboxHorizon {
    cached: std::sync::Mutex<Option<(DateTime<Utc>, std::time::Instant)>>,
}

impl InboxHorizon {
    const REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

    pub async fn since(
        &self,
        db: &sea_orm::DatabaseConnection,
    ) -> Result<DateTime<Utc>, HttpError> {
        let cached = *self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((since, at)) = cached
            && at.elapsed() < Self::REFRESH
        {
            return Ok(since);
        }
        let since = store::inbox_complete_since(db)
            .await
            .map_err(db_unavailable)?;
        *self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((since, std::time::Instant::now()));
        Ok(since)
    }
}

/// A page of rows and whether it came from the cache.
pub struct Rows {
    pub page: Page<FeedRow>,
    pub cached: bool,
}

fn page_of<P: Serialize>(
    mut rows: Vec<FeedRow>,
    limit: u32,
    codec: &CursorCodec,
    position: impl Fn(&FeedRow) -> P,
) -> Page<FeedRow> {
    rows.truncate(limit as usize + 1);
    Page::from_fetched(rows, limit, codec, position)
}

fn db_unavailable(err: impl std::borrow::Borrow<sea_orm::DbErr>) -> HttpError {
    let err = err.borrow();
    tracing::warn!(error = %err, "read model unavailable");
    HttpError::unavailable(
        "store_unavailable",
        "the timeline read model is unavailable",
    )
    .with_header("Retry-After", "5")
}

/// Cache-aside for a first page: the cached entry `name`, or one query shared by all
/// concurrent misses (single flight) whose result is kept for `ttl`. Not `cacheable` (a
/// first page larger than the cached size): the query runs on its own, neither shared nor
/// kept. Also says whether the value came from the cache.
async fn cache_aside<T, F>(
    state: &AppState,
    flights: &SingleFlight<T>,
    name: &str,
    ttl: Duration,
    cacheable: bool,
    query: F,
) -> Result<(T, bool), HttpError>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    F: Future<Output = Result<T, sea_orm::DbErr>> + Send + 'static,
{
    if cacheable && let Some(value) = state.cache.get::<T>(name).await {
        return Ok((value, true));
    }
    let (cache, key) = (state.cache.clone(), name.to_owned());
    let fill = async move {
        let value = query.await?;
        if cacheable {
            cache.put(&key, &value, ttl).await;
        }
        Ok(value)
    };
    let value = flights
        .run_if(cacheable, name, fill)
        .await
        .map_err(db_unavailable)?;
    Ok((Arc::unwrap_or_clone(value), false))
}

pub async fn following(
    state: &AppState,
    member: i64,
    query: &PageQuery,
) -> Result<Rows, HttpError> {
    let limit = query.limit()?;
    let codec = &state.cursor;
    let position = |r: &FeedRow| (r.created_at, r.post_id);
    let since = state.inbox.since(&state.db).await?;
    if let Some(before) = query.position::<store::Before>(codec)? {
        let rows = store::following(&state.db, member, Some(before), limit + 1, since)
            .await
            .map_err(db_unavailable)?;
        return Ok(Rows {
            page: page_of(rows, limit, codec, position),
            cached: false,
        });
    }
    let cacheable = limit <= DEFAULT_LIMIT;
    let fetch = if cacheable { CACHED_ROWS } else { limit + 1 };
    let db = state.db.clone();
    let (rows, cached) = cache_aside(
        state,
        &state.fills.following,
        &following_cache_name(member),
        state.settings.feed_ttl,
        cacheable,
        async move { store::following(&db, member, None, fetch, since).await },
    )
    .await?;
    Ok(Rows {
        page: page_of(rows, limit, codec, position),
        cached,
    })
}

pub async fn mine(state: &AppState, member: i64, query: &PageQuery) -> Result<Rows, HttpError> {
    let limit = query.limit()?;
    let before = query.position::<store::Before>(&state.cursor)?;
    let rows = store::by_author(&state.db, member, before, limit + 1)
        .await
        .map_err(db_unavailable)?;
    Ok(Rows {
        page: page_of(rows, limit, &state.cursor, |r| (r.created_at, r.post_id)),
        cached: false,
    })
}

/// A popular list as computed at `as_of` (ranks change with time: later pages of one
/// listing use the same clock).
#[derive(Clone, Serialize, Deserialize)]
pub struct RankedPage {
    as_of: DateTime<Utc>,
    rows: Vec<FeedRow>,
}

pub async fn popular(
    state: &AppState,
    window: Option<&str>,
    query: &PageQuery,
) -> Result<Rows, HttpError> {
    let limit = query.limit()?;
    let (window, span) = parse_window(window)?;
    let codec = &state.cursor;
    let position = |as_of: DateTime<Utc>| {
        move |r: &FeedRow| (as_of.timestamp_micros(), r.score.unwrap_or(0.0), r.post_id)
    };
    if let Some((as_of, score, id)) = query.position::<(i64, f64, i64)>(codec)? {
        let as_of = DateTime::from_timestamp_micros(as_of).ok_or_else(|| {
            HttpError::bad_request("invalid cursor").with_field("cursor", "invalid cursor")
        })?;
        let rows = store::popular(&state.db, as_of, as_of - span, Some((score, id)), limit + 1)
            .await
            .map_err(db_unavailable)?;
        return Ok(Rows {
            page: page_of(rows, limit, codec, position(as_of)),
            cached: false,
        });
    }
    let cacheable = limit <= DEFAULT_LIMIT;
    let fetch = if cacheable { CACHED_ROWS } else { limit + 1 };
    let db = state.db.clone();
    let (ranked, cached) = cache_aside(
        state,
        &state.fills.popular,
        &popular_name(window),
        state.settings.hot_ttl,
        cacheable,
        async move {
            // Microsecond precision: what the cursor can carry.
            let now = Utc::now();
            let as_of = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
            let rows = store::popular(&db, as_of, as_of - span, None, fetch).await?;
            Ok(RankedPage { as_of, rows })
        },
    )
    .await?;
    Ok(Rows {
        page: page_of(ranked.rows, limit, codec, position(ranked.as_of)),
        cached,
    })
}

pub async fn most_commented(
    state: &AppState,
    window: Option<&str>,
    query: &PageQuery,
) -> Result<Rows, HttpError> {
    let limit = query.limit()?;
    let (window, span) = parse_window(window)?;
    let codec = &state.cursor;
    let position = |r: &FeedRow| (r.comment_count, r.post_id);
    let since = Utc::now() - span;
    if let Some(after) = query.position::<(i64, i64)>(codec)? {
        let rows = store::most_commented(&state.db, since, Some(after), limit + 1)
            .await
            .map_err(db_unavailable)?;
        return Ok(Rows {
            page: page_of(rows, limit, codec, position),
            cached: false,
        });
    }
    let cacheable = limit <= DEFAULT_LIMIT;
    let fetch = if cacheable { CACHED_ROWS } else { limit + 1 };
    let db = state.db.clone();
    let (rows, cached) = cache_aside(
        state,
        &state.fills.most_commented,
        &commented_name(window),
        state.settings.hot_ttl,
        cacheable,
        async move { store::most_commented(&db, since, None, fetch).await },
    )
    .await?;
    Ok(Rows {
        page: page_of(rows, limit, codec, position),
        cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_a_fixed_set() {
        assert_eq!(parse_window(None).ok().map(|w| w.0), Some("24h"));
        assert_eq!(
            parse_window(Some("7D")).ok().map(|w| w.1),
            Some(ChronoDuration::days(7))
        );
        assert!(parse_window(Some("2h")).is_err());
        assert!(parse_window(Some("")).is_err());
        assert_eq!(hot_cache_names().len(), 10);
    }
}
