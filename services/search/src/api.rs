//! `GET /api/v1/search/posts` (public) and the `/admin/search/reindex` admin endpoints.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use chrono::{TimeZone, Utc};
use contracts::ErrorBody;
use pagination::{CursorCodec, Page, PageQuery};
use serde::Deserialize;
use service_runtime::HttpError;
use utoipa::IntoParams;

use crate::index::SearchIndex;
use crate::query::QueryBuilder;
use crate::rebuild::{RebuildStatus, Rebuilder};
use crate::search::{self, Hit, Position, Snapshots};

pub struct AppState {
    pub index: Arc<SearchIndex>,
    pub snapshots: Snapshots,
    pub cursor: CursorCodec,
    pub settings: crate::config::IndexSettings,
    pub rebuilder: Rebuilder,
    /// `SEARCH_MAX_CONCURRENT` permits, handed out first come, first served.
    pub permits: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchQuery {
    /// Words to find (all must match); `"…"` for a phrase. Korean, English or mixed.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1–100 (default 20).
    pub limit: Option<u32>,
}

/// Posts matching `q`, best first (BM25 × recency boost, see docs/search.md).
#[utoipa::path(get, path = "/api/v1/search/posts", tag = "search", params(SearchQuery),
    responses((status = 200, body = inline(Page<Hit>)), (status = 400, body = ErrorBody)))]
pub async fn search_posts(
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, HttpError> {
    let q = query.q.as_deref().unwrap_or("").trim().to_owned();
    if q.is_empty() {
        return Err(HttpError::bad_request("q must not be empty").with_field("q", "required"));
    }
    let max = state.settings.max_query_chars;
    if q.chars().count() > max {
        return Err(
            HttpError::bad_request(format!("q is longer than {max} characters"))
                .with_field("q", format!("at most {max} characters")),
        );
    }
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    };
    let limit = page.limit()? as usize;
    let position: Option<Position> = page.position(&state.cursor)?;
    let permit = Arc::clone(&state.permits)
        .acquire_owned()
        .await
        .map_err(|e| HttpError::internal(&e))?;
    let state = state.into_inner();
    let result = web::block(move || {
        let page = run(&state, &q, position, limit);
        drop(permit);
        page
    })
    .await
    .map_err(|e| HttpError::internal(&e))??;
    Ok(HttpResponse::Ok().json(result))
}

fn run(
    state: &AppState,
    q: &str,
    position: Option<Position>,
    limit: usize,
) -> Result<Page<Hit>, HttpError> {
    let live = state.index.live();
    let mut builder = QueryBuilder::new(live.fields);
    let Some(query) = builder.build(q) else {
        return Err(
            HttpError::bad_request("q has no words to search for (letters or digits)")
                .with_field("q", "no searchable words"),
        );
    };
    let (searcher, snapshot, as_of, offset) = match position {
        Some(p) => {
            let as_of = Utc.timestamp_millis_opt(p.as_of).single().ok_or_else(|| {
                HttpError::bad_request("malformed cursor").with_field("cursor", "malformed")
            })?;
            match state.snapshots.get(&p.snapshot) {
                Some(searcher) => (searcher, p.snapshot, as_of, p.offset),
                None => {
                    let searcher = live.searcher();
                    let id = Snapshots::id(&live.name, &searcher);
                    (searcher, id, as_of, p.offset)
                }
            }
        }
        None => {
            let searcher = live.searcher();
            let id = Snapshots::id(&live.name, &searcher);
            (searcher, id, Utc::now(), 0)
        }
    };
    let max = state.settings.max_results;
    if offset >= max {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    let limit = limit.min(max - offset);
    let hits = search::run(
        &searcher,
        &live.fields,
        query,
        as_of,
        offset,
        limit,
        state.settings.ranking,
    )
    .map_err(|e| HttpError::internal(&e))?;
    state.snapshots.keep(&snapshot, &searcher);
    let next = Position {
        snapshot,
        as_of: as_of.timestamp_millis(),
        offset: offset + limit,
    };
    let mut page = Page::from_fetched(hits, limit as u32, &state.cursor, |_| ());
    if page.next_cursor.is_some() && next.offset < max {
        page.next_cursor = Some(state.cursor.encode(&next));
    } else {
        page.next_cursor = None;
    }
    Ok(page)
}

/// Starts rebuilding the index from content into a fresh directory; searches keep being
/// answered from the current index until the new one is swapped in.
#[utoipa::path(post, path = "/admin/search/reindex", tag = "admin", security(("bearer" = [])),
    responses((status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody),
        (status = 202, body = RebuildStatus), (status = 409, body = ErrorBody)))]
pub async fn reindex(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    match state.rebuilder.start_reindex() {
        Ok(true) => Ok(HttpResponse::Accepted().json(state.rebuilder.status())),
        Ok(false) => Err(HttpError::conflict("a rebuild is already running")),
        Err(err) => Err(
            HttpError::unavailable("index_unavailable", format!("{err:#}"))
                .with_header("Retry-After", "5"),
        ),
    }
}

/// The running or last rebuild.
#[utoipa::path(get, path = "/admin/search/reindex", tag = "admin", security(("bearer" = [])),
    responses((status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody),
        (status = 200, body = RebuildStatus)))]
pub async fn reindex_status(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.rebuilder.status())
}
