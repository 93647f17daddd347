//! Likes on posts and comments: `PUT` likes, `DELETE` cancels, both idempotent; a member
//! likes a thing once however many requests race (the primary key decides).

use actix_web::{HttpResponse, web};
use auth::AuthMember;
use contracts::{ErrorBody, EventType};
use sea_orm::TransactionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::events;
use crate::error::{ContentError, Result, positive_id};
use crate::state::AppState;
use crate::store::likes::{self, Target};
use crate::store::{comments, posts};

#[derive(Debug, Serialize, ToSchema)]
pub struct LikeState {
    pub liked: bool,
    pub like_count: i64,
}

async fn set_post_like(
    state: &AppState,
    member: i64,
    raw_id: i64,
    like: bool,
) -> Result<HttpResponse> {
    let id = positive_id(raw_id, "id")?;
    let txn = state.db.begin().await?;
    let post = posts::live(&txn, id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    let changed = if like {
        likes::like(&txn, Target::Post(id), member).await?
    } else {
        likes::unlike(&txn, Target::Post(id), member).await?
    };
    let like_count = match changed {
        Some(count) => {
            let kind = if like {
                EventType::LikePost
            } else {
                EventType::LikePostCancel
            };
            events::append_event(&txn, &events::post_like(kind, member, &post, count), id).await?;
            count
        }
        None => posts::live(&txn, id)
            .await?
            .map_or(post.like_count, |p| p.like_count),
    };
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(LikeState {
        liked: like,
        like_count,
    }))
}

async fn set_comment_like(
    state: &AppState,
    member: i64,
    raw_id: i64,
    like: bool,
) -> Result<HttpResponse> {
    let id = positive_id(raw_id, "id")?;
    let txn = state.db.begin().await?;
    let comment = comments::find(&txn, id, false)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(ContentError::CommentNotFound)?;
    posts::live(&txn, comment.post_id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    let changed = if like {
        likes::like(&txn, Target::Comment(id), member).await?
    } else {
        likes::unlike(&txn, Target::Comment(id), member).await?
    };
    let like_count = match changed {
        Some(count) => {
            let kind = if like {
                EventType::LikeComment
            } else {
                EventType::LikeCommentCancel
            };
            events::append_event(
                &txn,
                &events::comment_like(kind, member, &comment, count),
                comment.post_id,
            )
            .await?;
            count
        }
        None => comments::find(&txn, id, false)
            .await?
            .map_or(comment.like_count, |c| c.like_count),
    };
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(LikeState {
        liked: like,
        like_count,
    }))
}

/// Likes a post (no change if already liked).
#[utoipa::path(put, path = "/api/v1/posts/{id}/like", tag = "likes", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = LikeState), (status = 404, body = ErrorBody)))]
pub async fn like_post(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    set_post_like(&state, member.id(), id.into_inner(), true).await
}

/// Cancels my like of a post (no change if not liked).
#[utoipa::path(delete, path = "/api/v1/posts/{id}/like", tag = "likes", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = LikeState), (status = 404, body = ErrorBody)))]
pub async fn unlike_post(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    set_post_like(&state, member.id(), id.into_inner(), false).await
}

/// Likes a comment.
#[utoipa::path(put, path = "/api/v1/comments/{id}/like", tag = "likes", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = LikeState), (status = 404, body = ErrorBody)))]
pub async fn like_comment(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    set_comment_like(&state, member.id(), id.into_inner(), true).await
}

/// Cancels my like of a comment.
#[utoipa::path(delete, path = "/api/v1/comments/{id}/like", tag = "likes", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = LikeState), (status = 404, body = ErrorBody)))]
pub async fn unlike_comment(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    set_comment_like(&state, member.id(), id.into_inner(), false).await
}
