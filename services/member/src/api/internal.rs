//! Endpoints for other services (not routed by the gateway): member summaries in bulk and
//! whom a member follows.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;
use utoipa::ToSchema;

use crate::api::follows::MemberSummary;
use crate::error::Result;
use crate::state::AppState;
use crate::store::{follows, members};

/// Most ids one batch request may ask for.
pub const BATCH_MAX: usize = 100;
/// Most followings one request returns.
pub const FOLLOWINGS_MAX: u32 = 5000;

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    pub ids: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResponse {
    /// The members that exist, in id order; unknown ids are left out.
    pub members: Vec<MemberSummary>,
}

/// Summaries of up to 100 members.
#[utoipa::path(post, path = "/internal/members/batch", tag = "internal", security(("service" = [])), request_body = BatchRequest,
    responses((status = 401, description = "No valid service token", body = contracts::ErrorBody),
        (status = 403, description = "The calling service may not call this route", body = contracts::ErrorBody),
        (status = 200, body = BatchResponse), (status = 422, body = contracts::ErrorBody)))]
pub async fn batch(
    state: web::Data<AppState>,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse> {
    let mut ids = body.into_inner().ids;
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > BATCH_MAX {
        return Err(
            HttpError::validation(format!("at most {BATCH_MAX} ids per request"))
                .with_field("ids", format!("{} given", ids.len()))
                .into(),
        );
    }
    if ids.iter().any(|id| *id <= 0) {
        return Err(HttpError::validation("ids must be positive")
            .with_field("ids", "non-positive id")
            .into());
    }
    let found = members::by_ids(&state.db, &ids).await?;
    Ok(HttpResponse::Ok().json(BatchResponse {
        members: found.iter().map(MemberSummary::of).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct FollowingIds {
    pub member_id: i64,
    pub following_ids: Vec<i64>,
}

/// Ids of the members someone follows (newest follows first, up to 5000).
#[utoipa::path(get, path = "/internal/members/{id}/following-ids", tag = "internal", security(("service" = [])), params(("id" = i64, Path)),
    responses((status = 401, description = "No valid service token", body = contracts::ErrorBody),
        (status = 403, description = "The calling service may not call this route", body = contracts::ErrorBody),
        (status = 200, body = FollowingIds), (status = 400, body = contracts::ErrorBody)))]
pub async fn following_ids(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = crate::api::members::member_id(id.into_inner())?;
    let ids = follows::followings_ids(&state.db, id, FOLLOWINGS_MAX).await?;
    Ok(HttpResponse::Ok().json(FollowingIds {
        member_id: id,
        following_ids: ids,
    }))
}

/// Most follows one page returns.
pub const FOLLOWS_PAGE_MAX: u32 = 5000;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AllFollowsQuery {
    /// Follows after this follower id (with `after_followee`), 0 to start.
    pub after_follower: Option<i64>,
    pub after_followee: Option<i64>,
    /// 1–5000 (default 1000).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AllFollows {
    pub items: Vec<follows::FollowRow>,
    /// Pass as `after_follower`/`after_followee` for the next page; absent when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<(i64, i64)>,
}

/// Every follow in (follower, followee) order — for rebuilding read models (timeline backfill).
#[utoipa::path(get, path = "/internal/follows", tag = "internal", security(("service" = [])), params(AllFollowsQuery),
    responses((status = 401, description = "No valid service token", body = contracts::ErrorBody),
        (status = 403, description = "The calling service may not call this route", body = contracts::ErrorBody),
        (status = 200, body = AllFollows), (status = 400, body = contracts::ErrorBody)))]
pub async fn all_follows(
    state: web::Data<AppState>,
    query: web::Query<AllFollowsQuery>,
) -> Result<HttpResponse> {
    let after = (
        query.after_follower.unwrap_or(0),
        query.after_followee.unwrap_or(0),
    );
    let limit = query.limit.unwrap_or(1000);
    if after.0 < 0 || after.1 < 0 || !(1..=FOLLOWS_PAGE_MAX).contains(&limit) {
        return Err(HttpError::bad_request(format!(
            "after_follower/after_followee must be >= 0 and limit 1..={FOLLOWS_PAGE_MAX}"
        ))
        .into());
    }
    let mut items = follows::all_after(&state.db, after, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = more
        .then(|| items.last().map(|f| (f.follower_id, f.followee_id)))
        .flatten();
    Ok(HttpResponse::Ok().json(AllFollows { items, next }))
}
