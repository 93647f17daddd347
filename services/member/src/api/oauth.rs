//! Google and Kakao login: redirect to the provider, handle its callback, link and unlink.

use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use auth::AuthMember;
use contracts::ErrorBody;
use contracts::{EventEnvelope, EventType, redis_keys};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::refresh_cookie;
use crate::domain::oauth::{
    OAuthError, PendingAuthorization, Provider, ProviderIdentity, ProviderSettings,
};
use crate::domain::profile::{Email, Nickname};
use crate::domain::tokens::{TokenPair, role_of};
use crate::error::{MemberError, Result};
use crate::state::AppState;
use crate::store::{self, members, oauth_accounts};

/// How long a started login may take to come back.
const STATE_TTL_SECONDS: u64 = 600;

fn provider(state: &AppState, name: &str) -> Result<(Provider, ProviderSettings)> {
    let provider =
        Provider::parse(name).ok_or_else(|| MemberError::ProviderUnavailable(name.to_owned()))?;
    let settings = state
        .oauth
        .get(provider)
        .cloned()
        .ok_or_else(|| MemberError::ProviderUnavailable(name.to_owned()))?;
    Ok((provider, settings))
}

async fn begin(
    state: &AppState,
    settings: &ProviderSettings,
    link_member: Option<i64>,
) -> Result<url::Url> {
    let (url, csrf, pending) = state.oauth.authorize(settings, link_member)?;
    let mut conn = state.redis.get().await.map_err(anyhow::Error::from)?;
    let _: () = redis::cmd("SET")
        .arg(redis_keys::oauth_state(&state.redis_prefix, &csrf))
        .arg(serde_json::to_string(&pending).map_err(anyhow::Error::from)?)
        .arg("EX")
        .arg(STATE_TTL_SECONDS)
        .query_async(&mut *conn)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(url)
}

/// Starts a login with the provider: redirects there (authorization code + PKCE + state).
#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}", tag = "oauth",
    params(("provider" = String, Path, description = "google | kakao")),
    responses((status = 302, description = "to the provider"), (status = 404, body = ErrorBody)))]
pub async fn start(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let (_, settings) = provider(&state, &name)?;
    let url = begin(&state, &settings, None).await?;
    Ok(HttpResponse::Found()
        .insert_header((LOCATION, url.to_string()))
        .finish())
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizationUrl {
    pub authorization_url: String,
}

/// Starts linking the provider to my account; open the returned URL in the browser.
#[utoipa::path(post, path = "/api/v1/auth/oauth/{provider}/link", tag = "oauth", security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses((status = 200, body = AuthorizationUrl), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn link(
    member: AuthMember,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    let (_, settings) = provider(&state, &name)?;
    let url = begin(&state, &settings, Some(member.id())).await?;
    Ok(HttpResponse::Ok().json(AuthorizationUrl {
        authorization_url: url.to_string(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Linked {
    pub linked: String,
}

/// The provider's redirect back: checks the single-use state, exchanges the code (with the
/// PKCE verifier), verifies who logged in, then logs in the linked member, links by verified
/// email, or creates a member — and answers our tokens as login does.
#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}/callback", tag = "oauth",
    params(("provider" = String, Path), CallbackQuery),
    responses((status = 200, body = TokenPair), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 500, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn callback(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse> {
    let (provider, settings) = provider(&state, &name)?;
    let csrf = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or(MemberError::InvalidState)?;
    // GETDEL: a state works once, so a replayed callback (or a reused code) is refused.
    let pending: Option<String> = {
        let mut conn = state.redis.get().await.map_err(anyhow::Error::from)?;
        redis::cmd("GETDEL")
            .arg(redis_keys::oauth_state(&state.redis_prefix, csrf))
            .query_async(&mut *conn)
            .await
            .map_err(anyhow::Error::from)?
    };
    let pending: PendingAuthorization = pending
        .and_then(|p| serde_json::from_str(&p).ok())
        .filter(|p: &PendingAuthorization| p.provider == provider)
        .ok_or(MemberError::InvalidState)?;
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or(error);
        return Err(MemberError::ProviderDenied(
            detail.chars().take(200).collect(),
        ));
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            service_runtime::HttpError::bad_request("the callback has no code")
                .with_field("code", "required")
        })?;
    let identity = state
        .oauth
        .identify(&settings, code, &pending)
        .await
        .map_err(|e| match e {
            OAuthError::Exchange(m) => MemberError::OAuthCodeRejected(m),
            OAuthError::Identity(m) => MemberError::OAuthIdentityRejected(m),
            OAuthError::Unavailable(m) => {
                tracing::warn!(error = %m, "OAuth provider unreachable");
                MemberError::Http(service_runtime::HttpError::new(
                    actix_web::http::StatusCode::BAD_GATEWAY,
                    "oauth_provider_unavailable",
                    format!(
                        "{} cannot be reached right now; try again",
                        provider.as_str()
                    ),
                ))
            }
        })?;
    let txn = state.db.begin().await?;
    if let Some(member_id) = pending.link_member {
        link_identity(&txn, provider, &identity, member_id).await?;
        txn.commit().await?;
        return Ok(HttpResponse::Ok().json(Linked {
            linked: provider.as_str().to_owned(),
        }));
    }
    let member = resolve(&txn, provider, &identity).await?;
    txn.commit().await?;
    let pair = state.tokens.login(member.id, role_of(&member.role)).await?;
    Ok(HttpResponse::Ok()
        .cookie(refresh_cookie(&state, &pair))
        .json(pair))
}

async fn link_identity(
    txn: &DatabaseTransaction,
    provider: Provider,
    identity: &ProviderIdentity,
    member_id: i64,
) -> Result<()> {
    if let Some(existing) = oauth_accounts::find(txn, provider.as_str(), &identity.subject).await? {
        if existing.member_id == member_id {
            return Ok(());
        }
        return Err(MemberError::IdentityTaken(provider.as_str().to_owned()));
    }
    oauth_accounts::link(
        txn,
        provider.as_str(),
        &identity.subject,
        member_id,
        identity.email.as_deref(),
    )
    .await
    .map_err(|e| {
        if store::is_unique_violation(&e) {
            MemberError::ProviderAlreadyLinked(provider.as_str().to_owned())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// The member a provider login is: already linked; else the member with that verified
/// email (linked now); else a new member.
async fn resolve(
    txn: &DatabaseTransaction,
    provider: Provider,
    identity: &ProviderIdentity,
) -> Result<members::Model> {
    if let Some(account) = oauth_accounts::find(txn, provider.as_str(), &identity.subject).await? {
        return members::by_id(txn, account.member_id)
            .await?
            .ok_or(MemberError::MemberNotFound);
    }
    let verified = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified)
        .and_then(|e| Email::parse(e).ok());
    if let Some(email) = &verified
        && let Some(member) = members::by_email(txn, email.as_str()).await?
    {
        link_identity(txn, provider, identity, member.id).await?;
        let member = if member.email_verified {
            member
        } else {
            // The provider proved the address: mark it verified.
            members::set_verified_email(txn, member, email.as_str()).await?
        };
        return Ok(member);
    }
    let nickname = Nickname::coerce(
        identity
            .name
            .as_deref()
            .or(verified.as_ref().map(Email::local_part))
            .unwrap_or(provider.as_str()),
    );
    let member = members::insert(
        txn,
        members::NewMember {
            email: verified.as_ref().map(Email::as_str),
            email_verified: verified.is_some(),
            password_hash: None,
            nickname: nickname.as_str(),
        },
    )
    .await?;
    link_identity(txn, provider, identity, member.id).await?;
    let event = EventEnvelope::new(
        EventType::MemberCreate,
        member.id,
        member.id,
        serde_json::json!({ "nickname": member.nickname, "provider": provider.as_str() }),
    );
    events::append(txn, &event, &format!("member:{}", member.id)).await?;
    Ok(member)
}

/// Unlinks a provider from my account — never the last way to log in.
#[utoipa::path(delete, path = "/api/v1/auth/oauth/{provider}", tag = "oauth", security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn unlink(
    member: AuthMember,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    let provider =
        Provider::parse(&name).ok_or_else(|| MemberError::NotLinked(name.to_string()))?;
    let txn = state.db.begin().await?;
    let me = members::by_id(&txn, member.id())
        .await?
        .ok_or(MemberError::MemberNotFound)?;
    let linked = oauth_accounts::of_member(&txn, member.id()).await?;
    if !linked.iter().any(|a| a.provider == provider.as_str()) {
        return Err(MemberError::NotLinked(provider.as_str().to_owned()));
    }
    if me.password_hash.is_none() && linked.len() == 1 {
        return Err(MemberError::LastLoginMethod);
    }
    oauth_accounts::unlink(&txn, member.id(), provider.as_str()).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
