//! Follow and unfollow (idempotent), and the follower/following lists.

use actix_web::{HttpResponse, web};
use auth::AuthMember;
use chrono::{DateTime, Utc};
use contracts::ErrorBody;
use contracts::{EventEnvelope, EventType};
use pagination::{Page, PageQuery};
use sea_orm::TransactionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::members::member_id;
use crate::error::{MemberError, Result};
use crate::state::AppState;
use crate::store::follows::{self, Direction};
use crate::store::members;

/// A member in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberSummary {
    pub id: i64,
    pub nickname: String,
    pub profile_image_id: Option<String>,
    /// When the follow happened (in follow lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed_at: Option<DateTime<Utc>>,
}

impl MemberSummary {
    pub fn of(m: &members::Model) -> Self {
        Self {
            id: m.id,
            nickname: m.nickname.clone(),
            profile_image_id: m.profile_image_id.clone(),
            followed_at: None,
        }
    }
}

async fn set_follow(
    state: &AppState,
    follower: i64,
    raw_target: i64,
    follow: bool,
) -> Result<HttpResponse> {
    let target = member_id(raw_target)?;
    if target == follower {
        return Err(MemberError::SelfFollow);
    }
    let txn = state.db.begin().await?;
    if members::by_id(&txn, target).await?.is_none() {
        return Err(MemberError::MemberNotFound);
    }
    let changed = if follow {
        follows::follow(&txn, follower, target).await?
    } else {
        follows::unfollow(&txn, follower, target).await?
    };
    if changed {
        let event_type = if follow {
            EventType::Follow
        } else {
            EventType::Unfollow
        };
        let event = EventEnvelope::new(event_type, follower, target, serde_json::json!({}));
        // Keyed by follower: one member's follow changes stay in order.
        events::append(&txn, &event, &format!("member:{follower}")).await?;
    }
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Follows a member. Following someone already followed changes nothing (204 either way).
#[utoipa::path(post, path = "/api/v1/members/{id}/follow", tag = "follows", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn follow(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    set_follow(&state, member.id(), id.into_inner(), true).await
}

/// Unfollows a member (204 even if not followed).
#[utoipa::path(delete, path = "/api/v1/members/{id}/follow", tag = "follows", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unfollow(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    set_follow(&state, member.id(), id.into_inner(), false).await
}

async fn list(
    state: &AppState,
    raw_id: i64,
    query: &PageQuery,
    direction: Direction,
) -> Result<HttpResponse> {
    let id = member_id(raw_id)?;
    let limit = query.limit()?;
    let after: Option<(DateTime<Utc>, i64)> = query.position(&state.cursor)?;
    if members::by_id(&state.db, id).await?.is_none() {
        return Err(MemberError::MemberNotFound);
    }
    let edges = follows::page(&state.db, id, direction, after, limit + 1).await?;
    let ids: Vec<i64> = edges.iter().map(|e| e.member_id).collect();
    let found: std::collections::HashMap<i64, members::Model> = members::by_ids(&state.db, &ids)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let items: Vec<(MemberSummary, i64)> = edges
        .iter()
        .filter_map(|e| {
            found.get(&e.member_id).map(|m| {
                let mut summary = MemberSummary::of(m);
                summary.followed_at = Some(e.created_at);
                (summary, e.member_id)
            })
        })
        .collect();
    let page = Page::from_fetched(items, limit, &state.cursor, |(s, id)| (s.followed_at, *id));
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
        next_cursor: page.next_cursor,
    }))
}

/// Who follows a member, newest first.
#[utoipa::path(get, path = "/api/v1/members/{id}/followers", tag = "follows",
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = Page<MemberSummary>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn followers(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    list(&state, id.into_inner(), &query, Direction::Followers).await
}

/// Whom a member follows, newest first.
#[utoipa::path(get, path = "/api/v1/members/{id}/followings", tag = "follows",
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = Page<MemberSummary>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn followings(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    list(&state, id.into_inner(), &query, Direction::Followings).await
}
