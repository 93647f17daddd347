//! Google and Kakao login: redirect to the provider, handle its callback, link and unlink.
//!
//! A flow is bound to the browser that started it: the redirect (or the link request) sets a
//! short-lived HttpOnly, SameSite=Lax cookie with a random value whose hash is stored with
//! the state; the callback requires that cookie, so a callback URL opened in another browser
//! (login CSRF, link CSRF) is refused.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use auth::AuthMember;
use contracts::ErrorBody;
use contracts::{EventEnvelope, EventType, redis_keys};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;
use utoipa::{IntoParams, ToSchema};

use super::refresh_cookie;
use crate::domain::oauth::{
    OAuthError, PendingAuthorization, Provider, ProviderIdentity, ProviderSettings,
    browser_matches, new_browser_binding,
};
use crate::domain::profile::{Email, Nickname};
use crate::domain::tokens::{TokenPair, role_of};
use crate::error::{MemberError, Result};
use crate::state::AppState;
use crate::store::{members, oauth_accounts};

/// How long a started login may take to come back (the state and the flow cookie).
const STATE_TTL_SECONDS: u64 = 600;
/// Where the flow cookie is sent: the OAuth endpoints only (the callback among them).
const FLOW_COOKIE_PATH: &str = "/api/v1/auth/oauth";

/// The flow cookie's name: one per provider, so a Google and a Kakao login started in two
/// tabs do not overwrite each other's binding.
fn flow_cookie_name(provider: Provider) -> String {
    format!("oauth_flow_{}", provider.as_str())
}

/// The browser binding: HttpOnly (no script reads it), SameSite=Lax (sent on the provider's
/// top-level GET redirect back to us, not on cross-site subrequests or POSTs), Secure as
/// `REFRESH_COOKIE_SECURE` says, and as short-lived as the state.
fn flow_cookie(state: &AppState, provider: Provider, value: String) -> Cookie<'static> {
    let max_age = i64::try_from(STATE_TTL_SECONDS).unwrap_or(600);
    Cookie::build(flow_cookie_name(provider), value)
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Lax)
        .path(FLOW_COOKIE_PATH)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

fn cleared_flow_cookie(state: &AppState, provider: Provider) -> Cookie<'static> {
    let mut cookie = flow_cookie(state, provider, String::new());
    cookie.set_max_age(CookieDuration::ZERO);
    cookie
}

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

/// Stores a new flow under its state; answers the provider URL and the browser's cookie.
async fn begin(
    state: &AppState,
    settings: &ProviderSettings,
    link_member: Option<i64>,
) -> Result<(url::Url, Cookie<'static>)> {
    let (binding, binding_hash) = new_browser_binding();
    let (url, csrf, pending) = state.oauth.authorize(settings, link_member, binding_hash)?;
    let mut conn = state.redis.get().await.map_err(anyhow::Error::from)?;
    let _: () = redis::cmd("SET")
        .arg(redis_keys::oauth_state(&state.redis_prefix, &csrf))
        .arg(serde_json::to_string(&pending).map_err(anyhow::Error::from)?)
        .arg("EX")
        .arg(STATE_TTL_SECONDS)
        .query_async(&mut *conn)
        .await
        .map_err(anyhow::Error::from)?;
    Ok((url, flow_cookie(state, settings.provider, binding)))
}

/// Starts a login with the provider: redirects there (authorization code + PKCE + state, and
/// a nonce for Google) and sets the flow cookie that binds the login to this browser.
#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}", tag = "oauth",
    params(("provider" = String, Path, description = "google | kakao")),
    responses(
        (status = 302, description = "to the provider; sets the `oauth_flow_{provider}` cookie (HttpOnly, SameSite=Lax, 10 min)"),
        (status = 404, body = ErrorBody, description = "`not_found`: the provider is not configured"),
        (status = 500, body = ErrorBody, description = "`internal`: Redis is unreachable")))]
pub async fn start(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let (_, settings) = provider(&state, &name)?;
    let (url, cookie) = begin(&state, &settings, None).await?;
    Ok(HttpResponse::Found()
        .cookie(cookie)
        .insert_header((LOCATION, url.to_string()))
        .finish())
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizationUrl {
    pub authorization_url: String,
}

/// Starts linking the provider to my account. Call it from the browser (credentials
/// included: it sets the flow cookie), then open the returned URL in that same browser; the
/// callback refuses any other browser.
#[utoipa::path(post, path = "/api/v1/auth/oauth/{provider}/link", tag = "oauth", security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses(
        (status = 200, body = AuthorizationUrl, description = "sets the `oauth_flow_{provider}` cookie (HttpOnly, SameSite=Lax, 10 min)"),
        (status = 401, body = ErrorBody, description = "no, expired or revoked access token"),
        (status = 404, body = ErrorBody, description = "`not_found`: the provider is not configured"),
        (status = 500, body = ErrorBody, description = "`internal`: Redis is unreachable"),
        (status = 503, body = ErrorBody, description = "`auth_unavailable`: the token blacklist cannot be checked")))]
pub async fn link(
    member: AuthMember,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    let (_, settings) = provider(&state, &name)?;
    let (url, cookie) = begin(&state, &settings, Some(member.id())).await?;
    Ok(HttpResponse::Ok().cookie(cookie).json(AuthorizationUrl {
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

/// Said when a provider login took over an account whose email had never been verified.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountReclaimed {
    /// For the user, as is.
    pub message: String,
    /// The account had a password; it no longer works.
    pub password_removed: bool,
    /// How many logins (refresh-token families) of the account were revoked.
    pub sessions_revoked: usize,
    /// Providers that were linked to the account and are not any more.
    pub unlinked: Vec<String>,
}

/// A provider login: our tokens, as login answers them, and — when this login took over an
/// unverified account — what was removed from it.
#[derive(Serialize, ToSchema)]
pub struct OAuthLogin {
    #[serde(flatten)]
    pub tokens: TokenPair,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_reclaimed: Option<AccountReclaimed>,
}

/// What a callback answers: a login, or (for a link flow) the linked provider.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CallbackAnswer {
    Login(OAuthLogin),
    Linked(Linked),
}

fn browser_mismatch() -> MemberError {
    MemberError::Http(HttpError::new(
        StatusCode::BAD_REQUEST,
        "browser_mismatch",
        "this sign-in was not started in this browser, or it expired; start again here",
    ))
}

/// The provider's redirect back. Consumes the single-use state, requires the flow cookie of
/// the browser that started it, exchanges the code (with the PKCE verifier), verifies who
/// logged in (for Google the ID token, its signature, issuer, audience and nonce), then: a
/// link flow links to the member who started it; a login logs in the linked member, or the
/// member with that verified email (taking over an account whose email was never verified:
/// its password, other providers and sessions are removed, and the answer says so), or a new
/// member. Clears the flow cookie once the flow is over.
#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}/callback", tag = "oauth",
    params(("provider" = String, Path), CallbackQuery),
    responses(
        (status = 200, body = CallbackAnswer, description = "a login (token pair + refresh cookie, and `account_reclaimed` when an unverified account was taken over) or `{linked}`"),
        (status = 400, body = ErrorBody, description = "`invalid_state` (unknown, expired, used or other provider's state), `browser_mismatch` (no or another flow's cookie), `oauth_denied`, `oauth_code_rejected`, `bad_request` (no code)"),
        (status = 401, body = ErrorBody, description = "`oauth_identity_rejected`: the ID token or user info does not verify (signature, issuer, audience, nonce)"),
        (status = 404, body = ErrorBody, description = "`not_found`: the provider is not configured, or the linking member is gone"),
        (status = 409, body = ErrorBody, description = "`identity_taken`, `already_linked`, `email_taken`"),
        (status = 500, body = ErrorBody, description = "`internal`"),
        (status = 502, body = ErrorBody, description = "`oauth_provider_unavailable`: the provider could not be reached")))]
pub async fn callback(
    req: HttpRequest,
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
    // GETDEL: a state works once, whichever browser presents it, so a replayed callback (or
    // a reused code) is refused.
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
    let bound = req
        .cookie(&flow_cookie_name(provider))
        .is_some_and(|c| browser_matches(c.value(), &pending.browser));
    if !bound {
        // Not this browser's flow: its own cookie (if any) may belong to a flow it is still
        // in, so it is left alone.
        tracing::warn!(
            provider = provider.as_str(),
            link = pending.link_member.is_some(),
            "OAuth callback from a browser that did not start the flow: refused"
        );
        metrics::counter!("member_oauth_browser_mismatch_total").increment(1);
        return Err(browser_mismatch());
    }
    // This browser's flow is over whatever happens next: clear its cookie.
    let mut response = match finish(&state, provider, &settings, &query, &pending).await {
        Ok(response) => response,
        Err(err) => err.error_response(),
    };
    response
        .add_cookie(&cleared_flow_cookie(&state, provider))
        .map_err(anyhow::Error::from)?;
    Ok(response)
}

/// The provider's `error` code, if it looks like one (never its free-text description, which
/// anyone can put in a link).
fn provider_error_code(error: &str) -> String {
    let code: String = error.chars().take(64).collect();
    if !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        code
    } else {
        "unknown_error".to_owned()
    }
}

/// The callback after the state and the browser checked out.
async fn finish(
    state: &AppState,
    provider: Provider,
    settings: &ProviderSettings,
    query: &CallbackQuery,
    pending: &PendingAuthorization,
) -> Result<HttpResponse> {
    if let Some(error) = &query.error {
        return Err(MemberError::ProviderDenied(provider_error_code(error)));
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            HttpError::bad_request("the callback has no code").with_field("code", "required")
        })?;
    let identity = state
        .oauth
        .identify(settings, code, pending)
        .await
        .map_err(|e| identify_error(provider, e))?;
    let txn = state.db.begin().await?;
    if let Some(member_id) = pending.link_member {
        link_to_member(&txn, provider, &identity, member_id).await?;
        txn.commit().await?;
        return Ok(HttpResponse::Ok().json(CallbackAnswer::Linked(Linked {
            linked: provider.as_str().to_owned(),
        })));
    }
    let (member, reclaimed) = resolve(&txn, provider, &identity).await?;
    let account_reclaimed = match reclaimed {
        None => {
            txn.commit().await?;
            None
        }
        Some(reclaim) => {
            // Refresh families are revoked before the commit (a failure rolls the takeover
            // back); after it, every session ends at once: the session epoch is raised, so
            // the access tokens the squatter holds and any login that raced the takeover
            // are refused everywhere, then the families are revoked again.
            let before = state.tokens.refresh.revoke_all(member.id).await?;
            txn.commit().await?;
            let after = state.tokens.end_every_session(member.id).await?;
            tracing::warn!(
                member_id = member.id,
                provider = provider.as_str(),
                password_removed = reclaim.password_removed,
                unlinked = ?reclaim.unlinked,
                "an unverified account was taken over by the verified owner of its email"
            );
            metrics::counter!("member_oauth_account_reclaimed_total").increment(1);
            Some(reclaim.answer(provider, before + after))
        }
    };
    let pair = state.tokens.login(member.id, role_of(&member.role)).await?;
    Ok(HttpResponse::Ok()
        .cookie(refresh_cookie(state, &pair))
        .json(CallbackAnswer::Login(OAuthLogin {
            tokens: pair,
            account_reclaimed,
        })))
}

/// The client sees a fixed message; the detail (URLs, library errors) goes to the log.
fn identify_error(provider: Provider, err: OAuthError) -> MemberError {
    tracing::warn!(provider = provider.as_str(), error = %err, "OAuth callback refused");
    match err {
        OAuthError::Exchange(_) => MemberError::OAuthCodeRejected(format!(
            "{} did not accept the sign-in; start again",
            provider.as_str()
        )),
        OAuthError::Identity(_) => MemberError::OAuthIdentityRejected(format!(
            "{}'s answer could not be verified; start again",
            provider.as_str()
        )),
        OAuthError::Unavailable(_) => MemberError::Http(HttpError::new(
            StatusCode::BAD_GATEWAY,
            "oauth_provider_unavailable",
            format!(
                "{} cannot be reached right now; try again",
                provider.as_str()
            ),
        )),
    }
}

/// A link flow: the identity joins the member whose browser started it. When the provider
/// verifies the member's own email, the email becomes verified (the member holds the account
/// and now proved the address).
async fn link_to_member(
    txn: &DatabaseTransaction,
    provider: Provider,
    identity: &ProviderIdentity,
    member_id: i64,
) -> Result<()> {
    let member = members::by_id(txn, member_id)
        .await?
        .ok_or(MemberError::MemberNotFound)?;
    link_identity(txn, provider, identity, member_id).await?;
    if let Some(email) = verified_email(identity)
        && !member.email_verified
        && member.email.as_deref() == Some(email.as_str())
    {
        members::set_verified_email(txn, member, email.as_str()).await?;
    }
    Ok(())
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
        MemberError::unique_or(
            e,
            MemberError::ProviderAlreadyLinked(provider.as_str().to_owned()),
        )
    })?;
    Ok(())
}

/// The provider's email, when the provider vouches for it. An unverified provider email never
/// links to, or takes over, anything.
fn verified_email(identity: &ProviderIdentity) -> Option<Email> {
    identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified)
        .and_then(|e| Email::parse(e).ok())
}

/// What a takeover removed (sessions are revoked by the caller, around the commit).
struct Reclaim {
    password_removed: bool,
    unlinked: Vec<String>,
}

impl Reclaim {
    fn answer(self, provider: Provider, sessions_revoked: usize) -> AccountReclaimed {
        let mut message = format!(
            "An account with this email already existed, but its email had never been \
             verified. {} verified that the address is yours, so the account is now yours: ",
            match provider {
                Provider::Google => "Google",
                Provider::Kakao => "Kakao",
            }
        );
        let mut removed = Vec::new();
        if self.password_removed {
            removed.push("its password was removed".to_owned());
        }
        removed.push("everyone signed in to it was signed out".to_owned());
        if !self.unlinked.is_empty() {
            removed.push(format!(
                "these sign-in methods were unlinked: {}",
                self.unlinked.join(", ")
            ));
        }
        message.push_str(&removed.join("; "));
        message.push_str(". If you did not create that account, check its profile and posts.");
        AccountReclaimed {
            message,
            password_removed: self.password_removed,
            sessions_revoked,
            unlinked: self.unlinked,
        }
    }
}

/// The member a provider login is: already linked; else the member with that verified email
/// (linked now — taken over first when its email was never verified); else a new member.
async fn resolve(
    txn: &DatabaseTransaction,
    provider: Provider,
    identity: &ProviderIdentity,
) -> Result<(members::Model, Option<Reclaim>)> {
    if let Some(account) = oauth_accounts::find(txn, provider.as_str(), &identity.subject).await? {
        let member = members::by_id(txn, account.member_id)
            .await?
            .ok_or(MemberError::MemberNotFound)?;
        return Ok((member, None));
    }
    let verified = verified_email(identity);
    if let Some(email) = &verified
        && let Some(member) = members::by_email_locked(txn, email.as_str()).await?
    {
        if member.email_verified {
            // The address was proven before: the provider's owner of it is the member.
            link_identity(txn, provider, identity, member.id).await?;
            return Ok((member, None));
        }
        // Nobody ever proved this address. Whoever registered it may be an attacker waiting
        // for its owner (pre-account takeover): the verified owner gets the account, and
        // everything the registrant could have set up to keep a way in goes — the password,
        // other linked providers, and (by the caller) every session.
        let password_removed = member.password_hash.is_some();
        let unlinked = oauth_accounts::unlink_all(txn, member.id).await?;
        let member = members::reclaim_for_verified_owner(txn, member, email.as_str()).await?;
        link_identity(txn, provider, identity, member.id).await?;
        let nothing_removed = !password_removed && unlinked.is_empty();
        let reclaim = Reclaim {
            password_removed,
            unlinked,
        };
        return Ok((member, (!nothing_removed).then_some(reclaim)));
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
    .await
    // Someone registered the address since we looked: start again (it now links).
    .map_err(|e| MemberError::unique_or(e, MemberError::EmailTaken))?;
    link_identity(txn, provider, identity, member.id).await?;
    let event = EventEnvelope::new(
        EventType::MemberCreate,
        member.id,
        member.id,
        serde_json::json!({ "nickname": member.nickname, "provider": provider.as_str() }),
    );
    events::append(txn, &event, &format!("member:{}", member.id)).await?;
    Ok((member, None))
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
