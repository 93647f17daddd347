//! Comments and replies (one level), oldest first.

use actix_web::{HttpRequest, HttpResponse, web};
use auth::AuthMember;
use chrono::{DateTime, Utc};
use contracts::{ErrorBody, EventType};
use pagination::{Page, PageQuery};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::idempotent::create_once;
use crate::domain::{events, input};
use crate::error::{ContentError, Result, invalid, positive_id};
use crate::state::AppState;
use crate::store::comments::{self, Comment, Thread};
use crate::store::posts::{self, Counter};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    pub body: String,
    /// Reply to this top-level comment of the same post.
    pub parent_id: Option<i64>,
}

/// Comments on a post, or replies to a comment. Send `Idempotency-Key` to make retries safe.
#[utoipa::path(post, path = "/api/v1/posts/{id}/comments", tag = "comments", security(("bearer" = [])),
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = NewComment,
    responses((status = 201, body = Comment), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    req: HttpRequest,
    member: AuthMember,
    state: web::Data<AppState>,
    post_id: web::Path<i64>,
    body: web::Json<NewComment>,
) -> Result<HttpResponse> {
    let post_id = positive_id(post_id.into_inner(), "id")?;
    let text = input::comment_body(&body.body).map_err(|m| invalid("body", m))?;
    let parent = body
        .parent_id
        .map(|p| positive_id(p, "parent_id"))
        .transpose()?;
    let author = member.id();
    create_once(&state, &req, author, &*body, async move |txn| {
        let post = posts::find(txn, post_id, true)
            .await?
            .filter(|p| p.deleted_at.is_none())
            .ok_or(ContentError::PostNotFound)?;
        if let Some(parent_id) = parent {
            let parent = comments::find(txn, parent_id, true)
                .await?
                .filter(|c| c.post_id == post_id && c.deleted_at.is_none())
                .ok_or(ContentError::CommentNotFound)?;
            if parent.parent_id.is_some() {
                return Err(ContentError::ReplyToReply);
            }
        }
        let comment = comments::insert(txn, post_id, parent, author, &text).await?;
        let count = posts::bump(txn, post_id, Counter::Comments, 1).await?;
        let event = events::comment(EventType::CommentCreate, author, &comment, &post, count);
        events::append_event(txn, &event, post_id).await?;
        Ok(serde_json::to_value(Comment::from(comment)).map_err(anyhow::Error::from)?)
    })
    .await
}

async fn list(state: &AppState, thread: Thread, query: &PageQuery) -> Result<HttpResponse> {
    let limit = query.limit()?;
    let after: Option<(DateTime<Utc>, i64)> = query.position(&state.cursor)?;
    let rows = comments::page(&state.db, thread, after, limit + 1).await?;
    let page = Page::from_fetched(rows, limit, &state.cursor, |c| (c.created_at, c.id));
    Ok(HttpResponse::Ok().json(Page {
        items: page
            .items
            .into_iter()
            .map(Comment::from)
            .collect::<Vec<_>>(),
        next_cursor: page.next_cursor,
    }))
}

/// A post's top-level comments, oldest first (a deleted comment with replies shows as deleted).
#[utoipa::path(get, path = "/api/v1/posts/{id}/comments", tag = "comments", params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = Page<Comment>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn of_post(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    posts::live(&state.db, id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    list(&state, Thread::Post(id), &query).await
}

/// Replies to a comment, oldest first.
#[utoipa::path(get, path = "/api/v1/comments/{id}/replies", tag = "comments", params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = Page<Comment>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replies(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    let comment = comments::find(&state.db, id, false)
        .await?
        .ok_or(ContentError::CommentNotFound)?;
    posts::live(&state.db, comment.post_id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    list(&state, Thread::Replies(id), &query).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentEdit {
    pub body: String,
}

/// Edits my comment.
#[utoipa::path(patch, path = "/api/v1/comments/{id}", tag = "comments", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = CommentEdit,
    responses((status = 200, body = Comment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn edit(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<CommentEdit>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    let text = input::comment_body(&body.body).map_err(|m| invalid("body", m))?;
    let txn = state.db.begin().await?;
    let current = comments::find(&txn, id, true)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(ContentError::CommentNotFound)?;
    let post = posts::live(&txn, current.post_id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    if current.author_id != member.id() {
        return Err(ContentError::NotAuthor);
    }
    let updated = comments::edit(&txn, id, &text).await?;
    let event = events::comment(
        EventType::CommentUpdate,
        member.id(),
        &updated,
        &post,
        post.comment_count,
    );
    events::append_event(&txn, &event, post.id).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(Comment::from(updated)))
}

/// Deletes my comment (soft; one with replies stays as "deleted" and keeps them).
#[utoipa::path(delete, path = "/api/v1/comments/{id}", tag = "comments", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    let txn = state.db.begin().await?;
    let comment = comments::find(&txn, id, true)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or(ContentError::CommentNotFound)?;
    if comment.author_id != member.id() {
        return Err(ContentError::NotAuthor);
    }
    let post = posts::find(&txn, comment.post_id, true)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    comments::soft_delete(&txn, &comment).await?;
    let count = posts::bump(&txn, post.id, Counter::Comments, -1).await?;
    let event = events::comment(
        EventType::CommentDelete,
        member.id(),
        &comment,
        &post,
        count,
    );
    events::append_event(&txn, &event, post.id).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
