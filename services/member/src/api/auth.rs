//! Email accounts and tokens: register, check-email, login, refresh, logout, logout-all.

use actix_web::{HttpRequest, HttpResponse, web};
use auth::AuthMember;
use contracts::ErrorBody;
use contracts::{EventEnvelope, EventType};
use ratelimit::{Decision, Limit};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{REFRESH_COOKIE, cleared_refresh_cookie, client_ip, refresh_cookie};
use crate::api::members::Profile;
use crate::domain::profile::{Email, FieldErrors, Nickname, Password};
use crate::domain::refresh::Rotation;
use crate::domain::tokens::{TokenPair, role_of};
use crate::error::{MemberError, Result};
use crate::state::AppState;
use crate::store::{self, members};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ann@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    #[schema(example = "ann")]
    pub nickname: String,
}

/// Creates an account with email and password.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Profile), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let password = errors.check("password", Password::parse(&body.password, email.as_ref()));
    let nickname = errors.check("nickname", Nickname::parse(&body.nickname));
    errors.finish()?;
    let (Some(email), Some(password), Some(nickname)) = (email, password, nickname) else {
        return Err(MemberError::Internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };
    if members::by_email(&state.db, email.as_str())
        .await?
        .is_some()
    {
        return Err(MemberError::EmailTaken);
    }
    let hash = state.passwords.hash(password.expose()).await?;
    let txn = state.db.begin().await?;
    let member = members::insert(
        &txn,
        members::NewMember {
            email: Some(email.as_str()),
            email_verified: false,
            password_hash: Some(hash),
            nickname: nickname.as_str(),
        },
    )
    .await
    .map_err(|e| {
        if store::is_unique_violation(&e) {
            MemberError::EmailTaken
        } else {
            e.into()
        }
    })?;
    let event = EventEnvelope::new(
        EventType::MemberCreate,
        member.id,
        member.id,
        serde_json::json!({ "nickname": member.nickname }),
    );
    events::append(&txn, &event, &format!("member:{}", member.id)).await?;
    txn.commit().await?;
    Ok(HttpResponse::Created().json(Profile::own(&member)))
}

#[derive(Deserialize, IntoParams)]
pub struct CheckEmailQuery {
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailAvailability {
    pub email: String,
    pub available: bool,
}

/// Whether an email can still be registered (for the sign-up form).
#[utoipa::path(get, path = "/api/v1/auth/check-email", tag = "auth", params(CheckEmailQuery),
    responses((status = 200, body = EmailAvailability), (status = 422, body = ErrorBody)))]
pub async fn check_email(
    state: web::Data<AppState>,
    query: web::Query<CheckEmailQuery>,
) -> Result<HttpResponse> {
    let email = Email::parse(&query.email).map_err(|m| {
        service_runtime::HttpError::validation("the email is invalid").with_field("email", m)
    })?;
    let available = members::by_email(&state.db, email.as_str())
        .await?
        .is_none();
    Ok(HttpResponse::Ok().json(EmailAvailability {
        email: email.as_str().to_owned(),
        available,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

async fn check_limit(state: &AppState, scope: &str, subject: &str) -> Result<()> {
    let limit = Limit::per_minute(scope, state.login_attempts_per_minute);
    match state.limiter.hit(&limit, subject).await? {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after } => Err(MemberError::RateLimited(retry_after)),
    }
}

/// Logs in with email and password. Wrong password and unknown email answer the same 401 in
/// the same time; at most `LOGIN_ATTEMPTS_PER_MINUTE` attempts per IP and per account.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let ip = client_ip(&req, state.trust_forwarded_for);
    let account = body.email.trim().to_lowercase();
    check_limit(&state, "login:ip", &ip).await?;
    check_limit(&state, "login:account", &account).await?;
    let member = match Email::parse(&body.email) {
        Ok(email) => members::by_email(&state.db, email.as_str()).await?,
        Err(_) => None,
    };
    let hash = member.as_ref().and_then(|m| m.password_hash.as_deref());
    // Always one argon2 verification, against a decoy when there is no account.
    let ok = state.passwords.verify(&body.password, hash).await?;
    let Some(member) = member.filter(|_| ok) else {
        metrics::counter!("member_logins_total", "outcome" => "failed").increment(1);
        return Err(MemberError::InvalidCredentials);
    };
    metrics::counter!("member_logins_total", "outcome" => "ok").increment(1);
    let pair = state.tokens.login(member.id, role_of(&member.role)).await?;
    Ok(HttpResponse::Ok()
        .cookie(refresh_cookie(&state, &pair))
        .json(pair))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

fn presented_refresh(req: &HttpRequest, body: Option<web::Json<RefreshRequest>>) -> Option<String> {
    req.cookie(REFRESH_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
        .or_else(|| body.and_then(|b| b.into_inner().refresh_token))
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// Rotates the refresh token (from the cookie, or the JSON body for non-browser clients) and
/// answers a new pair. A reused token revokes the whole login and answers 401 with
/// `X-Relogin-Required: true`.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "optional when the cookie is sent"),
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Option<web::Json<RefreshRequest>>,
) -> Result<HttpResponse> {
    let token = presented_refresh(&req, body).ok_or(MemberError::RefreshInvalid)?;
    match state.tokens.refresh.rotate(&token).await? {
        Rotation::Rotated { member_id, token } => {
            let member = members::by_id(&state.db, member_id)
                .await?
                .ok_or(MemberError::RefreshInvalid)?;
            let pair = state
                .tokens
                .pair(member.id, role_of(&member.role), token)
                .await?;
            Ok(HttpResponse::Ok()
                .cookie(refresh_cookie(&state, &pair))
                .json(pair))
        }
        Rotation::Reused { member_id } => {
            tracing::warn!(member_id, "refresh token reuse: family revoked");
            metrics::counter!("member_refresh_reuse_total").increment(1);
            Err(MemberError::RefreshReused)
        }
        Rotation::Invalid => Err(MemberError::RefreshInvalid),
    }
}

/// Logs out: the access token is blacklisted until it expires, the refresh token's login is
/// revoked, the cookie cleared.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    req: HttpRequest,
    member: AuthMember,
    state: web::Data<AppState>,
    body: Option<web::Json<RefreshRequest>>,
) -> Result<HttpResponse> {
    state
        .blacklist
        .add(&member.0.jti, member.0.expires_at)
        .await?;
    if let Some(token) = presented_refresh(&req, body) {
        state.tokens.refresh.revoke_family_of(&token).await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(cleared_refresh_cookie(&state))
        .finish())
}

/// Logs out everywhere: every login of the member is revoked.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_all(member: AuthMember, state: web::Data<AppState>) -> Result<HttpResponse> {
    state
        .blacklist
        .add(&member.0.jti, member.0.expires_at)
        .await?;
    let revoked = state.tokens.refresh.revoke_all(member.id()).await?;
    tracing::info!(member_id = member.id(), revoked, "logged out everywhere");
    Ok(HttpResponse::NoContent()
        .cookie(cleared_refresh_cookie(&state))
        .finish())
}
