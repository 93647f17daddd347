//! Email accounts and tokens: register, check-email, login, refresh, logout, logout-all.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::{HttpRequest, HttpResponse, web};
use auth::AuthMember;
use contracts::ErrorBody;
use contracts::{EventEnvelope, EventType};
use ratelimit::{Limit, Reservation};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::{
    DEVICE_COOKIE, REFRESH_COOKIE, cleared_refresh_cookie, client_ip, device_cookie, refresh_cookie,
};
use crate::api::members::Profile;
use crate::domain::profile::{Email, FieldErrors, Nickname, PASSWORD_MAX, Password};
use crate::domain::refresh::Rotation;
use crate::domain::tokens::{TokenPair, role_of};
use crate::error::{MemberError, Result};
use crate::state::AppState;
use crate::store::members;

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
    .map_err(|e| MemberError::unique_or(e, MemberError::EmailTaken))?;
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

/// A client as the login limits count it: its address, or for IPv6 its /64 (one subscriber
/// usually holds a whole /64, so single addresses would be free to rotate through).
fn client_subject(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(v6)) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            format!("{}/64", Ipv6Addr::from(octets))
        }
        Some(v4) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}

/// An account as the login limits count it: a hash of the normalised (length-checked)
/// email, so a key is 32 characters whatever was sent, and the same whether or not an
/// account has this email.
fn account_subject(email: &Email) -> String {
    short_hash(email.as_str())
}

/// 128 bits of SHA-256, hex.
fn short_hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The limits a login attempt is counted against (config `LoginLimits`, docs/member.md
/// "Login limits"). A known device of the account is counted against its own limit only;
/// any other client against the (account, client) pair, the client across all accounts, and
/// the account's ceiling across all clients.
struct LoginBuckets {
    account_client: Limit,
    client: Limit,
    account: Limit,
    device: Limit,
}

impl LoginBuckets {
    fn new(state: &AppState) -> Self {
        let l = &state.login;
        Self {
            account_client: Limit::new("login:fail:account_client", l.per_account_client, l.window),
            client: Limit::new("login:fail:client", l.per_client, l.window),
            account: Limit::new("login:fail:account", l.per_account, l.account_window),
            device: Limit::new("login:fail:device", l.per_account_client, l.window),
        }
    }
}

/// The password a login checks: what could ever have been registered (so an oversized body
/// costs no hashing and builds no key).
fn login_password(raw: &str) -> std::result::Result<&str, String> {
    if raw.is_empty() {
        return Err("is required".into());
    }
    if raw.chars().count() > PASSWORD_MAX {
        return Err(format!("must be at most {PASSWORD_MAX} characters"));
    }
    Ok(raw)
}

/// Logs in with email and password. Wrong password and unknown email answer the same 401 in
/// the same time, and the same 429s: only *failed* logins count, per account from one
/// client (`LOGIN_FAILURES_PER_ACCOUNT_CLIENT`, 10/min), per client across accounts
/// (`LOGIN_FAILURES_PER_CLIENT`, 30/min) and per account across clients
/// (`LOGIN_FAILURES_PER_ACCOUNT`, 100/h; a browser that logged in to the account before,
/// with the `login_device` cookie, is not held by it). A success clears its own pair's
/// failures. See docs/member.md "Login limits".
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenPair, description = "logged in; sets the `refresh_token` and `login_device` cookies"),
        (status = 400, body = ErrorBody, description = "malformed JSON"),
        (status = 401, body = ErrorBody, description = "`invalid_credentials`: wrong password or no such account (one answer for both)"),
        (status = 413, body = ErrorBody, description = "body over `HTTP_MAX_BODY_BYTES`"),
        (status = 415, body = ErrorBody, description = "body not `application/json`"),
        (status = 422, body = ErrorBody, description = "`validation_failed`: a missing field, an email that is not one, an empty password or one longer than any allowed"),
        (status = 429, body = ErrorBody, description = "`rate_limited`, with `Retry-After` (seconds): too many failed logins (the same for every email, registered or not)"),
        (status = 500, body = ErrorBody, description = "`internal` (Redis or Postgres failed; the cause is logged, not shown)"),
    ))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let password = errors.check("password", login_password(&body.password));
    errors.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(MemberError::Internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };
    let account = account_subject(&email);
    let buckets = LoginBuckets::new(&state);
    let presented_device = req
        .cookie(DEVICE_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty());
    let known_device = match presented_device {
        Some(token) if state.devices.is_known(&token, &account).await? => Some(token),
        _ => None,
    };
    let client = client_subject(client_ip(&req, &state));
    let pair = format!("{account}:{client}");
    // A known device is its own limit's subject, by hash (the token is a credential).
    let device_subject = known_device.as_deref().map(short_hash);
    // Count the attempt as a failure first (so concurrent attempts cannot overshoot a limit)
    // and take it back once the password proved right.
    let reservation = match &device_subject {
        Some(device) => state.limiter.reserve(&[(&buckets.device, device)]).await?,
        None => {
            state
                .limiter
                .reserve(&[
                    (&buckets.account_client, &pair),
                    (&buckets.client, &client),
                    (&buckets.account, &account),
                ])
                .await?
        }
    };
    let reserved = match reservation {
        Reservation::Admitted(reserved) => reserved,
        Reservation::Limited { retry_after } => {
            metrics::counter!("member_logins_total", "outcome" => "limited").increment(1);
            return Err(MemberError::RateLimited(retry_after));
        }
    };
    let member = members::by_email(&state.db, email.as_str()).await?;
    let hash = member.as_ref().and_then(|m| m.password_hash.as_deref());
    // Always one argon2 verification, against a decoy when there is no account.
    let ok = state.passwords.verify(password, hash).await?;
    let Some(member) = member.filter(|_| ok) else {
        metrics::counter!("member_logins_total", "outcome" => "failed").increment(1);
        return Err(MemberError::InvalidCredentials);
    };
    // A member-wide revocation (an account taken over by its email's verified owner) may
    // have run during the check: read the session epoch, then make sure the password that
    // just verified is still the account's. A revocation before the read removed it; one
    // after leaves this login at a stale epoch, so its tokens are refused everywhere.
    let epoch = state.tokens.epoch(member.id).await?;
    let current = members::by_id(&state.db, member.id).await?;
    if current.as_ref().and_then(|m| m.password_hash.as_deref()) != member.password_hash.as_deref()
    {
        metrics::counter!("member_logins_total", "outcome" => "failed").increment(1);
        return Err(MemberError::InvalidCredentials);
    }
    state.limiter.release(&reserved).await?;
    match &device_subject {
        Some(device) => state.limiter.reset(&buckets.device, device).await?,
        None => state.limiter.reset(&buckets.account_client, &pair).await?,
    }
    let device = state
        .devices
        .remember(known_device.as_deref(), &account)
        .await?;
    metrics::counter!("member_logins_total", "outcome" => "ok").increment(1);
    let pair = state
        .tokens
        .login_at(member.id, role_of(&member.role), epoch)
        .await?;
    Ok(HttpResponse::Ok()
        .cookie(refresh_cookie(&state, &pair))
        .cookie(device_cookie(&state, device))
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
/// answers a new pair. The same token presented again within `REFRESH_REUSE_GRACE_SECONDS`
/// (10 s) of its rotation — two tabs refreshing at once — answers the same refresh token
/// again with a fresh access token. Presented again later (or after its successor was used
/// too), it counts as reuse: the whole login is revoked and the answer is 401 with
/// `X-Relogin-Required: true`.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "optional when the cookie is sent"),
    responses(
        (status = 200, body = TokenPair, description = "rotated (or, within the grace window, the same successor again); sets the `refresh_token` cookie"),
        (status = 401, body = ErrorBody, description = "`refresh_invalid` (missing, unknown, expired, revoked) or `refresh_reused` (the login is now revoked); both with `X-Relogin-Required: true`"),
        (status = 500, body = ErrorBody, description = "`internal` (Redis or Postgres failed; the cause is logged, not shown)"),
    ))]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Option<web::Json<RefreshRequest>>,
) -> Result<HttpResponse> {
    let token = presented_refresh(&req, body).ok_or(MemberError::RefreshInvalid)?;
    match state.tokens.refresh.rotate(&token).await? {
        Rotation::Rotated {
            member_id,
            token,
            repeated,
            epoch,
        } => {
            if repeated {
                metrics::counter!("member_refresh_grace_total").increment(1);
            }
            let member = members::by_id(&state.db, member_id)
                .await?
                .ok_or(MemberError::RefreshInvalid)?;
            let pair = state
                .tokens
                .pair(member.id, role_of(&member.role), token, epoch)
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
    responses((status = 204), (status = 401, body = ErrorBody), (status = 500, body = ErrorBody)))]
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

/// Logs out everywhere: every login of the member is revoked, and every access token the
/// member holds (on any device) is refused from now on, not only once it expires.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn logout_all(member: AuthMember, state: web::Data<AppState>) -> Result<HttpResponse> {
    let revoked = state.tokens.end_every_session(member.id()).await?;
    tracing::info!(member_id = member.id(), revoked, "logged out everywhere");
    Ok(HttpResponse::NoContent()
        .cookie(cleared_refresh_cookie(&state))
        .finish())
}
