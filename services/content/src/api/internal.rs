//! For other services: every live post in id order (search index rebuild, timeline backfill).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;
use utoipa::{IntoParams, ToSchema};

use crate::error::Result;
use crate::state::AppState;
use crate::store::posts::{self, Post};

pub const PAGE_MAX: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AllPostsQuery {
    /// Posts with an id greater than this (0 to start).
    pub after: Option<i64>,
    /// 1–1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllPosts {
    pub items: Vec<Post>,
    /// Pass as `after` for the next page; absent when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Live posts in id order.
#[utoipa::path(get, path = "/internal/posts", tag = "internal", params(AllPostsQuery),
    security(("service" = [])),
    responses((status = 401, description = "No valid service token", body = contracts::ErrorBody),
        (status = 403, description = "The calling service may not call this route", body = contracts::ErrorBody),
        (status = 200, body = AllPosts), (status = 400, body = contracts::ErrorBody)))]
pub async fn all_posts(
    state: web::Data<AppState>,
    query: web::Query<AllPostsQuery>,
) -> Result<HttpResponse> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if after < 0 || !(1..=PAGE_MAX).contains(&limit) {
        return Err(
            HttpError::bad_request(format!("after must be >= 0 and limit 1..={PAGE_MAX}")).into(),
        );
    }
    let mut items = posts::page_all(&state.db, after, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_after = more.then(|| items.last().map(|p| p.id)).flatten();
    Ok(HttpResponse::Ok().json(AllPosts { items, next_after }))
}
