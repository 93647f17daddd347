//! Posts: create, read, edit (with history), soft delete, an author's posts.

use actix_web::{HttpRequest, HttpResponse, web};
use auth::{AuthMember, OptionalAuthMember};
use chrono::{DateTime, Utc};
use contracts::{ErrorBody, EventType};
use pagination::{Page, PageQuery};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::idempotent::create_once;
use crate::domain::{events, input};
use crate::error::{ContentError, Result, invalid, positive_id};
use crate::state::AppState;
use crate::store::likes::{self, Target};
use crate::store::posts::{self, Post, PostVersion};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    pub title: Option<String>,
    #[schema(example = "오늘의 피드")]
    pub body: String,
    #[serde(default)]
    pub image_ids: Vec<String>,
}

/// A post, and whether I like it when I am logged in.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostView {
    #[serde(flatten)]
    pub post: Post,
    /// `updated_at` differs from `created_at`: the post was edited.
    pub edited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liked: Option<bool>,
}

impl PostView {
    pub fn of(post: Post, liked: Option<bool>) -> Self {
        Self {
            edited: post.version > 1,
            post,
            liked,
        }
    }
}

/// Creates a post. Send an `Idempotency-Key` header to make retries safe.
#[utoipa::path(post, path = "/api/v1/posts", tag = "posts", security(("bearer" = [])), request_body = NewPost,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retried create return the first result")),
    responses((status = 201, body = PostView), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    req: HttpRequest,
    member: AuthMember,
    state: web::Data<AppState>,
    body: web::Json<NewPost>,
) -> Result<HttpResponse> {
    let title = input::title(body.title.as_deref()).map_err(|m| invalid("title", m))?;
    let text = input::post_body(&body.body).map_err(|m| invalid("body", m))?;
    let images = input::image_ids(&body.image_ids).map_err(|m| invalid("image_ids", m))?;
    let author = member.id();
    create_once(&state, &req, author, &*body, async move |txn| {
        let post = posts::insert(txn, author, title.as_deref(), &text, &images).await?;
        events::append_event(
            txn,
            &events::post(EventType::PostCreate, author, &post),
            post.id,
        )
        .await?;
        Ok(serde_json::to_value(PostView::of(post, Some(false))).map_err(anyhow::Error::from)?)
    })
    .await
}

/// A post. Deleted posts answer 404.
#[utoipa::path(get, path = "/api/v1/posts/{id}", tag = "posts", params(("id" = i64, Path)),
    responses((status = 200, body = PostView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    viewer: OptionalAuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    let post = posts::live(&state.db, id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    let liked = match viewer.0 {
        Some(viewer) => Some(likes::likes(&state.db, Target::Post(id), viewer.member_id).await?),
        None => None,
    };
    Ok(HttpResponse::Ok().json(PostView::of(post, liked)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostEdit {
    /// Empty string removes the title.
    pub title: Option<String>,
    pub body: Option<String>,
    pub image_ids: Option<Vec<String>>,
}

/// Edits my post; the previous text is kept in its history.
#[utoipa::path(patch, path = "/api/v1/posts/{id}", tag = "posts", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = PostEdit,
    responses((status = 200, body = PostView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn edit(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<PostEdit>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    let edit = body.into_inner();
    if edit.title.is_none() && edit.body.is_none() && edit.image_ids.is_none() {
        return Err(invalid("body", "nothing to change".into()));
    }
    let txn = state.db.begin().await?;
    let current = posts::find(&txn, id, true)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(ContentError::PostNotFound)?;
    if current.author_id != member.id() {
        return Err(ContentError::NotAuthor);
    }
    let title = match &edit.title {
        Some(t) => input::title(Some(t)).map_err(|m| invalid("title", m))?,
        None => current.title.clone(),
    };
    let text = match &edit.body {
        Some(b) => input::post_body(b).map_err(|m| invalid("body", m))?,
        None => current.body.clone(),
    };
    let images = match &edit.image_ids {
        Some(ids) => input::image_ids(ids).map_err(|m| invalid("image_ids", m))?,
        None => current.image_ids.clone(),
    };
    if title == current.title && text == current.body && images == current.image_ids {
        txn.commit().await?;
        return Ok(HttpResponse::Ok().json(PostView::of(current, None)));
    }
    let updated = posts::edit(&txn, &current, title.as_deref(), &text, &images).await?;
    events::append_event(
        &txn,
        &events::post(EventType::PostUpdate, member.id(), &updated),
        id,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(PostView::of(updated, None)))
}

/// Deletes my post (soft: it answers 404 from now on).
#[utoipa::path(delete, path = "/api/v1/posts/{id}", tag = "posts", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    member: AuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    let txn = state.db.begin().await?;
    let post = posts::find(&txn, id, true)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or(ContentError::PostNotFound)?;
    if post.author_id != member.id() {
        return Err(ContentError::NotAuthor);
    }
    posts::soft_delete(&txn, id).await?;
    events::append_event(
        &txn,
        &events::post(EventType::PostDelete, member.id(), &post),
        id,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Earlier versions of a post, newest first.
#[utoipa::path(get, path = "/api/v1/posts/{id}/history", tag = "posts", params(("id" = i64, Path)),
    responses((status = 200, body = [PostVersion]), (status = 404, body = ErrorBody)))]
pub async fn history(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse> {
    let id = positive_id(id.into_inner(), "id")?;
    posts::live(&state.db, id)
        .await?
        .ok_or(ContentError::PostNotFound)?;
    Ok(HttpResponse::Ok().json(posts::history(&state.db, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuthorQuery {
    /// Whose posts.
    pub author: i64,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// An author's posts, newest first.
#[utoipa::path(get, path = "/api/v1/posts", tag = "posts", params(AuthorQuery),
    responses((status = 200, body = Page<PostView>), (status = 400, body = ErrorBody)))]
pub async fn by_author(
    state: web::Data<AppState>,
    query: web::Query<AuthorQuery>,
) -> Result<HttpResponse> {
    let author = positive_id(query.author, "author")?;
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    };
    let limit = page.limit()?;
    let after: Option<(DateTime<Utc>, i64)> = page.position(&state.cursor)?;
    let rows = posts::by_author(&state.db, author, after, limit + 1).await?;
    let page = Page::from_fetched(rows, limit, &state.cursor, |p| (p.created_at, p.id));
    Ok(HttpResponse::Ok().json(Page {
        items: page
            .items
            .into_iter()
            .map(|p| PostView::of(p, None))
            .collect::<Vec<_>>(),
        next_cursor: page.next_cursor,
    }))
}
