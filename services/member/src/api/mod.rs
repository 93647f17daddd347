//! member's handlers: parse and validate input, call the domain, shape the answer.

pub mod auth;
pub mod follows;
pub mod internal;
pub mod jwks;
pub mod members;
pub mod oauth;

use std::net::IpAddr;

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

/// The known-device cookie (`domain::tokens::KnownDevices`): HttpOnly, SameSite=Strict,
/// Secure like the refresh cookie, sent only to the login endpoint. Logout leaves it: it
/// says the browser logged in before, not that it is logged in.
pub const DEVICE_COOKIE: &str = "login_device";
const DEVICE_COOKIE_PATH: &str = "/api/v1/auth/login";

pub fn device_cookie(state: &AppState, token: String) -> Cookie<'static> {
    let max_age = i64::try_from(state.devices.ttl().as_secs()).unwrap_or(i64::MAX);
    Cookie::build(DEVICE_COOKIE, token)
        .http_only(true)
        .secure(state.cookie_secure)
        .same_site(SameSite::Strict)
        .path(DEVICE_COOKIE_PATH)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// The client's address, worked out the one way every service does
/// ([`service_runtime::TrustedProxies`]: the peer, unless it is a trusted proxy — then the
/// `X-Forwarded-For` entries it and the trusted proxies before it appended, read right to
/// left). `None` only when there is no peer address.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    state
        .trusted_proxies
        .client_ip(req.headers(), req.peer_addr().map(|a| a.ip()))
}
