//! `GET /api/v1/timeline/{following,popular,most-commented,me}`.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use auth::AuthMember;
use chrono::{DateTime, Utc};
use contracts::ErrorBody;
use pagination::{DEFAULT_LIMIT, Page, PageQuery};
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;
use utoipa::{IntoParams, ToSchema};

use crate::authors::Author;
use crate::feeds::{self, Rows};
use crate::state::AppState;

/// Set when author profiles could not be had from member: items carry the author id alone
/// (or a cached profile).
pub const DEGRADED_HEADER: &str = "X-Degraded";
/// `hit` when the page came from the cache.
pub const CACHE_HEADER: &str = "X-Cache";

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedItem {
    pub post_id: i64,
    pub author: Author,
    pub title: Option<String>,
    /// The first 280 characters of the body.
    pub excerpt: String,
    pub image_ids: Vec<String>,
    pub like_count: i64,
    pub comment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Hot rank (popular only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WindowQuery {
    /// `1h`, `6h`, `24h` (default), `7d` or `30d`.
    pub window: Option<String>,
    pub cursor: Option<String>,
    /// 1–100 (default 20).
    pub limit: Option<u32>,
}

impl WindowQuery {
    fn page(&self) -> PageQuery {
        PageQuery {
            cursor: self.cursor.clone(),
            limit: self.limit,
        }
    }
}

/// The in-process cache key of a request for a cacheable first page: its cache name and
/// page size; `None` for later pages, large pages and invalid sizes (answered as usual).
type LocalKey = Option<(String, u32)>;

fn first_page(name: impl FnOnce() -> Option<String>, query: &PageQuery) -> LocalKey {
    if query.cursor.as_deref().is_some_and(|c| !c.is_empty()) {
        return None;
    }
    let limit = query.limit().ok().filter(|l| *l <= DEFAULT_LIMIT)?;
    Some((name()?, limit))
}

fn ok_json(body: Bytes, cached: bool, degraded: bool) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.content_type(ContentType::json())
        .insert_header((CACHE_HEADER, if cached { "hit" } else { "miss" }));
    if degraded {
        res.insert_header((DEGRADED_HEADER, "authors"));
    }
    res.body(body)
}

/// The finished first page this process already has, if fresh.
fn local_hit(state: &AppState, key: &LocalKey) -> Option<HttpResponse> {
    let (name, limit) = key.as_ref()?;
    state
        .cache
        .local_page(name, *limit)
        .map(|body| ok_json(body, true, false))
}

async fn respond(state: &AppState, rows: Rows, local: LocalKey) -> Result<HttpResponse, HttpError> {
    let author_ids: Vec<i64> = rows.page.items.iter().map(|r| r.author_id).collect();
    let (authors, degraded) = state.authors.of(&author_ids).await;
    let items: Vec<FeedItem> = rows
        .page
        .items
        .into_iter()
        .map(|r| FeedItem {
            author: authors.get(&r.author_id).cloned().unwrap_or(Author {
                id: r.author_id,
                nickname: None,
                profile_image_id: None,
            }),
            post_id: r.post_id,
            title: r.title,
            excerpt: r.excerpt,
            image_ids: r.image_ids,
            like_count: r.like_count,
            comment_count: r.comment_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            score: r.score,
        })
        .collect();
    let body: Bytes = serde_json::to_vec(&Page {
        items,
        next_cursor: rows.page.next_cursor,
    })
    .map_err(|e| HttpError::internal(&e))?
    .into();
    // A degraded page is never kept: the next request asks member again.
    if !degraded && let Some((name, limit)) = local {
        state.cache.keep_local_page(&name, limit, body.clone());
    }
    Ok(ok_json(body, rows.cached, degraded))
}

/// Posts of the members I follow, newest first.
#[utoipa::path(get, path = "/api/v1/timeline/following", tag = "timeline", params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<FeedItem>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn following(
    state: web::Data<AppState>,
    member: AuthMember,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, HttpError> {
    let local = first_page(|| Some(feeds::following_cache_name(member.id())), &query);
    if let Some(hit) = local_hit(&state, &local) {
        return Ok(hit);
    }
    let rows = feeds::following(&state, member.id(), &query).await?;
    respond(&state, rows, local).await
}

/// My posts, newest first (never cached: a post I just wrote shows at once).
#[utoipa::path(get, path = "/api/v1/timeline/me", tag = "timeline", params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<FeedItem>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn me(
    state: web::Data<AppState>,
    member: AuthMember,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, HttpError> {
    let rows = feeds::mine(&state, member.id(), &query).await?;
    respond(&state, rows, None).await
}

/// The window's posts by hot rank (docs/timeline.md has the formula).
#[utoipa::path(get, path = "/api/v1/timeline/popular", tag = "timeline", params(WindowQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<FeedItem>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn popular(
    state: web::Data<AppState>,
    _member: AuthMember,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, HttpError> {
    let page = query.page();
    let local = first_page(|| feeds::popular_cache_name(query.window.as_deref()), &page);
    if let Some(hit) = local_hit(&state, &local) {
        return Ok(hit);
    }
    let rows = feeds::popular(&state, query.window.as_deref(), &page).await?;
    respond(&state, rows, local).await
}

/// The window's posts with the most comments.
#[utoipa::path(get, path = "/api/v1/timeline/most-commented", tag = "timeline", params(WindowQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<FeedItem>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn most_commented(
    state: web::Data<AppState>,
    _member: AuthMember,
    query: web::Query<WindowQuery>,
) -> Result<HttpResponse, HttpError> {
    let page = query.page();
    let local = first_page(
        || feeds::commented_cache_name(query.window.as_deref()),
        &page,
    );
    if let Some(hit) = local_hit(&state, &local) {
        return Ok(hit);
    }
    let rows = feeds::most_commented(&state, query.window.as_deref(), &page).await?;
    respond(&state, rows, local).await
}
