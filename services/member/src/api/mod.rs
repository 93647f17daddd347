//! member's handlers: parse and validate input, call the domain, shape the answer.

pub mod auth;
pub mod follows;
pub mod internal;
pub mod jwks;
pub mod members;
pub mod oauth;

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};

use crate::domain::tokens::TokenPair;
use crate::state::AppState;

/// The refresh-token cookie: HttpOnly, SameSite=Strict, Secure (configurable for plain-HTTP
/// development), scoped to the auth endpoints.
pub const REFRESH_COOKIE: &str = "refresh_token";
const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

pub fn refresh_cookie(state: &AppState, pair: &TokenPair) -> Cookie<'static> {
    let max_age = i64::try_from(state.tokens.refresh.ttl().as_secs()).unwrap_or(i64::MAX);
    Cookie::build(REFRESH_COOKIE, pair.refresh_token.clone())
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Strict)
        .path(REFRESH_COOKIE_PATH)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

pub fn cleared_refresh_cookie(state: &AppState) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, "")
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Strict)
        .path(REFRESH_COOKIE_PATH)
        .max_age(CookieDuration::ZERO)
        .finish()
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when the gateway in
/// front is trusted to set it.
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return first.to_owned();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}
