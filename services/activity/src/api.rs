//! `GET /api/v1/activities/{me,following,members/{id}}`: listed activity, newest first,
//! cursor paged, optionally filtered by type.

use actix_web::{HttpResponse, web};
use auth::AuthMember;
use chrono::{DateTime, Utc};
use contracts::{ErrorBody, EventType};
use pagination::{CursorCodec, Page, PageQuery};
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;
use utoipa::{IntoParams, ToSchema};

use crate::following::Following;
use crate::store::{Activity, ActivityStore, ListQuery, Members, Snapshot, SubjectType};

/// What handlers share.
pub struct AppState {
    pub store: ActivityStore,
    pub following: Following,
    pub cursor: CursorCodec,
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only these activity types, comma-separated (e.g. `POST_CREATE,COMMENT_CREATE`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    /// Where the previous page ended (`next_cursor` of that page).
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 20).
    pub limit: Option<u32>,
}

/// One listed activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityView {
    /// The event's id (UUIDv7).
    pub id: String,
    pub member_id: i64,
    /// The event type, e.g. `POST_CREATE`, `LIKE_POST`, `FOLLOW`.
    #[serde(rename = "type")]
    pub activity_type: String,
    pub subject_type: SubjectType,
    pub subject_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<i64>,
    /// Whose post/comment it was, or whom they followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_member_id: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub snapshot: Snapshot,
}

impl ActivityView {
    fn of(a: Activity) -> Self {
        Self {
            id: a.event_id,
            member_id: a.member_id,
            activity_type: a.activity_type,
            subject_type: a.subject_type,
            subject_id: a.subject_id,
            post_id: a.post_id,
            comment_id: a.comment_id,
            target_member_id: a.target_member_id,
            occurred_at: DateTime::from_timestamp_millis(a.occurred_at.timestamp_millis())
                .unwrap_or_default(),
            snapshot: a.snapshot,
        }
    }
}

/// The listed types: every activity type, or a 400 naming the unknown one.
fn parse_types(raw: Option<&str>) -> Result<Vec<String>, HttpError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut types = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_uppercase().parse::<EventType>() {
            Ok(t) if crate::recorder::is_activity(t) => types.push(t.as_str().to_owned()),
            _ => {
                return Err(
                    HttpError::bad_request(format!("unknown activity type: {name}")).with_field(
                        "type",
                        "one of POST_CREATE, POST_UPDATE, POST_DELETE, POST_READ, COMMENT_CREATE, \
                         COMMENT_UPDATE, COMMENT_DELETE, COMMENT_READ, LIKE_POST, LIKE_COMMENT, FOLLOW",
                    ),
                );
            }
        }
    }
    types.sort();
    types.dedup();
    Ok(types)
}

async fn list(
    state: &AppState,
    members: Members,
    params: &ListParams,
) -> Result<HttpResponse, HttpError> {
    let page = PageQuery {
        cursor: params.cursor.clone(),
        limit: params.limit,
    };
    let limit = page.limit()?;
    let types = parse_types(params.types.as_deref())?;
    let before: Option<(i64, String)> = page.position(&state.cursor)?;
    let empty = matches!(&members, Members::Any(ids) if ids.is_empty());
    let fetched = if empty {
        Vec::new()
    } else {
        let query = ListQuery {
            members,
            types,
            before,
            fetch: i64::from(limit) + 1,
        };
        state.store.list(&query).await.map_err(|err| {
            tracing::warn!(error = %err, "cannot read activity");
            HttpError::unavailable("store_unavailable", "activity storage is unavailable")
                .with_header("Retry-After", RETRY_AFTER_SECONDS)
        })?
    };
    let page = Page::from_fetched(fetched, limit, &state.cursor, |a| {
        (a.occurred_at.timestamp_millis(), a.event_id.clone())
    });
    Ok(HttpResponse::Ok().json(Page {
        items: page
            .items
            .into_iter()
            .map(ActivityView::of)
            .collect::<Vec<_>>(),
        next_cursor: page.next_cursor,
    }))
}

/// My activity, newest first.
#[utoipa::path(get, path = "/api/v1/activities/me", tag = "activity", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<ActivityView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn me(
    state: web::Data<AppState>,
    member: AuthMember,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, HttpError> {
    list(&state, Members::One(member.id()), &params).await
}

/// A member's activity, newest first.
#[utoipa::path(get, path = "/api/v1/activities/members/{id}", tag = "activity",
    params(("id" = i64, Path), ListParams), security(("bearer" = [])),
    responses((status = 200, body = Page<ActivityView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn of_member(
    state: web::Data<AppState>,
    _member: AuthMember,
    id: web::Path<i64>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, HttpError> {
    let id = id.into_inner();
    if id <= 0 {
        return Err(HttpError::bad_request("id must be a positive integer")
            .with_field("id", "must be positive"));
    }
    list(&state, Members::One(id), &params).await
}

/// Activity of the members I follow, newest first. 503 (with `Retry-After`) when the
/// member service cannot say whom I follow and nothing is cached.
#[utoipa::path(get, path = "/api/v1/activities/following", tag = "activity", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<ActivityView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn following(
    state: web::Data<AppState>,
    member: AuthMember,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, HttpError> {
    // Validate the request before calling anyone.
    PageQuery {
        cursor: params.cursor.clone(),
        limit: params.limit,
    }
    .limit()?;
    parse_types(params.types.as_deref())?;
    let ids = state.following.ids(member.id()).await.map_err(|err| {
        HttpError::unavailable("member_unavailable", err.to_string())
            .with_header("Retry-After", RETRY_AFTER_SECONDS)
    })?;
    list(&state, Members::Any(ids), &params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_parsed_deduplicated_and_checked() {
        assert_eq!(
            parse_types(Some("like_post, POST_CREATE,LIKE_POST")).ok(),
            Some(vec!["LIKE_POST".to_owned(), "POST_CREATE".to_owned()])
        );
        assert_eq!(parse_types(Some(" ")).ok(), Some(Vec::new()));
        assert!(parse_types(Some("POST_EXPLODE")).is_err());
        // Cancels and member lifecycle are not listed, so not filterable.
        assert!(parse_types(Some("LIKE_POST_CANCEL")).is_err());
        assert!(parse_types(Some("MEMBER_CREATE")).is_err());
    }
}
