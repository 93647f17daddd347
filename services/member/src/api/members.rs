//! Profiles: mine (with email) and anyone's (public fields, counts, whether I follow them).

use actix_web::{HttpResponse, web};
use auth::{AuthMember, OptionalAuthMember};
use chrono::{DateTime, Utc};
use contracts::ErrorBody;
use contracts::{EventEnvelope, EventType};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::profile::{self, FieldErrors, Nickname};
use crate::error::{MemberError, Result};
use crate::state::AppState;
use crate::store::members::{self, ProfileChange};

/// A member as others see them (`email` only on your own profile, `following` only when
/// you are logged in).
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: i64,
    pub nickname: String,
    pub bio: String,
    pub profile_image_id: Option<String>,
    pub followers_count: i64,
    pub followings_count: i64,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub following: Option<bool>,
}

impl Profile {
    pub fn public(m: &members::Model) -> Self {
        Self {
            id: m.id,
            nickname: m.nickname.clone(),
            bio: m.bio.clone(),
            profile_image_id: m.profile_image_id.clone(),
            followers_count: m.followers_count,
            followings_count: m.followings_count,
            created_at: m.created_at,
            email: None,
            following: None,
        }
    }

    pub fn own(m: &members::Model) -> Self {
        Self {
            email: m.email.clone(),
            ..Self::public(m)
        }
    }
}

/// Path `{id}`: a positive member id.
pub fn member_id(raw: i64) -> Result<i64> {
    if raw <= 0 {
        return Err(service_runtime::HttpError::bad_request(
            "the member id must be a positive integer",
        )
        .with_field("id", "must be positive")
        .into());
    }
    Ok(raw)
}

/// My profile, with my email.
#[utoipa::path(get, path = "/api/v1/members/me", tag = "members", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody)))]
pub async fn me(member: AuthMember, state: web::Data<AppState>) -> Result<HttpResponse> {
    let found = members::by_id(&state.db, member.id())
        .await?
        .ok_or(MemberError::MemberNotFound)?;
    Ok(HttpResponse::Ok().json(Profile::own(&found)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub nickname: Option<String>,
    pub bio: Option<String>,
    /// An image id from the image service; `null` removes the image.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub profile_image_id: Option<Option<String>>,
}

/// Distinguishes an absent field (leave it) from `null` (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
}

/// Changes my nickname, bio or profile image.
#[utoipa::path(patch, path = "/api/v1/members/me", tag = "members", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_me(
    member: AuthMember,
    state: web::Data<AppState>,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let change = ProfileChange {
        nickname: body
            .nickname
            .as_deref()
            .and_then(|n| errors.check("nickname", Nickname::parse(n)))
            .map(|n| n.as_str().to_owned()),
        bio: body
            .bio
            .as_deref()
            .and_then(|b| errors.check("bio", profile::bio(b))),
        profile_image_id: match body.profile_image_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(id)) => errors
                .check("profile_image_id", profile::image_id(&id))
                .map(Some),
        },
    };
    errors.finish()?;
    let txn = state.db.begin().await?;
    let current = members::by_id(&txn, member.id())
        .await?
        .ok_or(MemberError::MemberNotFound)?;
    let updated = members::update_profile(&txn, current, change).await?;
    let event = EventEnvelope::new(
        EventType::MemberUpdate,
        updated.id,
        updated.id,
        serde_json::json!({
            "nickname": updated.nickname,
            "profile_image_id": updated.profile_image_id,
        }),
    );
    events::append(&txn, &event, &format!("member:{}", updated.id)).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(Profile::own(&updated)))
}

/// Anyone's public profile; `following` says whether I follow them when I am logged in.
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members", params(("id" = i64, Path)),
    responses((status = 200, body = Profile), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    viewer: OptionalAuthMember,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = member_id(id.into_inner())?;
    let found = members::by_id(&state.db, id)
        .await?
        .ok_or(MemberError::MemberNotFound)?;
    let mut profile = Profile::public(&found);
    if let Some(viewer) = viewer.0 {
        profile.following =
            Some(crate::store::follows::exists(&state.db, viewer.member_id, id).await?);
    }
    Ok(HttpResponse::Ok().json(profile))
}
