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
#[utoipa::path(post, path = "/internal/members/batch", tag = "internal", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 422, body = contracts::ErrorBody)))]
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
#[utoipa::path(get, path = "/internal/members/{id}/following-ids", tag = "internal", params(("id" = i64, Path)),
    responses((status = 200, body = FollowingIds), (status = 400, body = contracts::ErrorBody)))]
pub async fn following_ids(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = crate::api::members::member_id(id.into_inner())?;
    let ids = follows::followings_ids(&state.db, id, FOLLOWINGS_MAX).await?;
    Ok(HttpResponse::Ok().json(FollowingIds {
        member_id: id,
        following_ids: ids,
    }))
}
