//! The edge, in order, for every `/api/v1/**` request:
//!
//! 0. Refuse a path that is not canonical (400, see [`crate::domain::request_path`]) and a
//!    method the gateway does not forward (405), so every decision below and the upstream
//!    URL read the same string, and a downstream cannot read it as another path.
//! 1. Strip any `X-User-Id` / `X-User-Type` the client sent: only the gateway says who a
//!    caller is.
//! 2. Verify the bearer token (auth crate, member's JWKS) unless the path is public; inject
//!    `X-User-Id` / `X-User-Type`. On a public path a valid token still identifies the
//!    caller, and a bad one is passed on untouched for the service to judge (a client with
//!    a stale token must still reach login and refresh).
//! 3. Rate-limit by the first matching rule (Redis, shared by all replicas): 429 +
//!    `Retry-After`, and `X-RateLimit-Limit` / `X-RateLimit-Remaining` on every answer.
//!    The lineup counts its hit inside its own script instead ([`DeferredLimit`]).
//! 4. Protected routes: only admitted members pass, and each pass refreshes their admission.

use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use auth::{AuthError, Authenticated};
use contracts::auth::MemberRole;
use contracts::error::codes;
use contracts::headers::{TOKEN_REFRESH_NEEDED, USER_ID, USER_TYPE};
use ratelimit::{Decision, Hit, Limit};
use service_runtime::HttpError;

use crate::domain::limits::{LimitKey, LimitRule};
use crate::domain::paths::any_matches;
use crate::domain::request_path;
use crate::error::QueueError;
use crate::gateway::Gateway;

pub const RATE_LIMIT_LIMIT: &str = "X-RateLimit-Limit";
pub const RATE_LIMIT_REMAINING: &str = "X-RateLimit-Remaining";

/// Who the edge let through, for the handlers behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub member_id: i64,
    pub role: MemberRole,
}

/// The methods the gateway forwards (RFC 9110's, without TRACE and CONNECT), as `Allow`
/// lists them. Methods are case-sensitive: `get` is not `GET`.
pub const FORWARDED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

fn is_forwarded_method(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .contains(method)
}

/// The client's address (`TRUSTED_PROXIES` / `TRUSTED_PROXY_HOPS`, the one client-IP
/// function every service uses).
pub fn client_ip(req: &actix_web::HttpRequest, gw: &Gateway) -> Option<IpAddr> {
    gw.settings
        .trusted_proxies
        .client_ip(req.headers(), req.peer_addr().map(|a| a.ip()))
}

/// The caller a request's token names: `None` on a public path without a (good) token.
pub async fn authenticate(
    gw: &Gateway,
    headers: &HeaderMap,
    public: bool,
) -> Result<Option<Authenticated>, HttpError> {
    let token = match auth::bearer_token(headers) {
        Ok(token) => token,
        Err(_) if public => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let Some(token) = token else {
        return if public {
            Ok(None)
        } else {
            Err(AuthError::Missing.into())
        };
    };
    match gw.verifier.verify(&token).await {
        Ok(member) => Ok(Some(member)),
        Err(err) if public && !matches!(err, AuthError::Unavailable(_)) => {
            tracing::debug!(error = %err, "bad token on a public path: passed on without identity");
            Ok(None)
        }
        Err(err) => {
            metrics::counter!("gateway_auth_rejected_total", "reason" => reason(&err)).increment(1);
            Err(err.into())
        }
    }
}

fn reason(err: &AuthError) -> &'static str {
    match err {
        AuthError::Missing => "missing",
        AuthError::Invalid(_) => "invalid",
        AuthError::Expired => "expired",
        AuthError::Revoked => "revoked",
        AuthError::Unavailable(_) => "unavailable",
    }
}

/// The rate-limit rule that applies to a request (by its position in the rule list) and the
/// hit it counts (`client_ip` is asked only for rules keyed by address).
fn limit_for(
    gw: &Gateway,
    method: &str,
    path: &str,
    client_ip: impl FnOnce() -> Option<IpAddr>,
    caller: Option<Caller>,
) -> Option<(usize, Limit, String)> {
    let (index, rule) = LimitRule::find(&gw.settings.rate_limits, method, path)?;
    let subject = match (rule.key, caller) {
        (LimitKey::Member, Some(c)) => format!("m{}", c.member_id),
        _ => match client_ip() {
            Some(ip) => format!("ip{ip}"),
            None => "ip-unknown".to_owned(),
        },
    };
    let limit = Limit {
        scope: rule.name.clone(),
        max: rule.max,
        window: rule.window,
    };
    Some((index, limit, subject))
}

/// The rate-limit verdict for a request (`client_ip` is asked only for rules keyed by
/// address), or `None` when no rule applies or Redis is down (rate limiting fails open: an
/// outage of the limiter must not take the API down).
pub async fn rate_limit(
    gw: &Gateway,
    method: &str,
    path: &str,
    client_ip: impl FnOnce() -> Option<IpAddr>,
    caller: Option<Caller>,
) -> Result<Option<(u32, u32)>, HttpError> {
    let Some((rule, limit, subject)) = limit_for(gw, method, path, client_ip, caller) else {
        return Ok(None);
    };
    match gw.limiter.hit(&limit, &subject).await {
        Ok(decision) => verdict(gw, rule, decision),
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "rate limiter unavailable; letting the request through"
            );
            metrics::counter!("gateway_rate_limiter_errors_total").increment(1);
            Ok(None)
        }
    }
}

/// A request the edge let through without counting its rate limit, because its handler
/// counts it in the same Redis script as its own work (one round trip instead of two). Only
/// `POST /api/v1/queue/lineup` does; its handler answers with
/// [`verdict`] and [`limit_headers`] exactly as the edge would.
#[derive(Debug, Clone)]
pub struct DeferredLimit {
    /// The rule's position in `GATEWAY_RATE_LIMITS`.
    pub rule: usize,
    pub hit: Hit,
}

/// Whether a request's handler counts its rate limit itself ([`DeferredLimit`]).
fn settles_own_limit(method: &Method, path: &str) -> bool {
    method == Method::POST && path == "/api/v1/queue/lineup"
}

/// What the edge answers to a rate-limit decision under rule number `rule`: the limit and
/// what is left, or a 429 with `Retry-After`.
pub fn verdict(
    gw: &Gateway,
    rule: usize,
    decision: Decision,
) -> Result<Option<(u32, u32)>, HttpError> {
    let Some(rule) = gw.settings.rate_limits.get(rule) else {
        return Ok(None);
    };
    match decision {
        Decision::Allowed { remaining } => Ok(Some((rule.max, remaining))),
        Decision::Limited { retry_after } => {
            metrics::counter!("gateway_rate_limited_total", "rule" => rule.name.clone())
                .increment(1);
            let secs = retry_after.as_millis().div_ceil(1000).max(1);
            Err(HttpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::RATE_LIMITED,
                format!(
                    "too many requests: at most {} per {} s for {}; retry in {secs} s",
                    rule.max,
                    rule.window.as_secs(),
                    rule.path
                ),
            )
            .with_header("Retry-After", secs.to_string())
            .with_header(RATE_LIMIT_LIMIT, rule.max.to_string())
            .with_header(RATE_LIMIT_REMAINING, "0"))
        }
    }
}

/// `X-RateLimit-Limit` / `X-RateLimit-Remaining` on an answer.
pub fn limit_headers(headers: &mut HeaderMap, (max, remaining): (u32, u32)) {
    headers.insert(
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(max),
    );
    headers.insert(
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(remaining),
    );
}

/// The edge middleware on the `/api/v1` scope.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(gw) = req.app_data::<web::Data<Gateway>>().cloned() else {
        return Err(HttpError::internal(&"no Gateway registered as app data").into());
    };
    if !is_forwarded_method(req.method()) {
        return Err(QueueError::MethodNotAllowed.into());
    }
    if let Err(refusal) = request_path::check(req.path()) {
        metrics::counter!("gateway_bad_paths_total").increment(1);
        return Err(QueueError::BadPath(refusal).into());
    }
    let headers = req.headers_mut();
    headers.remove(USER_ID);
    headers.remove(USER_TYPE);

    let public = any_matches(&gw.settings.public_paths, req.method().as_str(), req.path());
    let member = authenticate(&gw, req.headers(), public).await?;
    let caller = member.as_ref().map(|m| Caller {
        member_id: m.member_id,
        role: m.role,
    });
    let refresh_needed = member.as_ref().is_some_and(|m| m.refresh_needed);
    if let Some(c) = caller {
        let headers = req.headers_mut();
        headers.insert(
            HeaderName::from_static("x-user-id"),
            HeaderValue::from(c.member_id),
        );
        headers.insert(
            HeaderName::from_static("x-user-type"),
            HeaderValue::from_static(c.role.as_header_value()),
        );
        req.extensions_mut().insert(c);
        tracing::Span::current().record("member.id", c.member_id);
    }

    let ip = || client_ip(req.request(), &gw);
    let limit = if settles_own_limit(req.method(), req.path()) {
        let deferred = limit_for(&gw, req.method().as_str(), req.path(), ip, caller).map(
            |(rule, limit, subject)| DeferredLimit {
                rule,
                hit: gw.limiter.prepare(&limit, &subject),
            },
        );
        if let Some(deferred) = deferred {
            req.extensions_mut().insert(deferred);
        }
        None
    } else {
        rate_limit(&gw, req.method().as_str(), req.path(), ip, caller).await?
    };

    if any_matches(&gw.protected_routes, req.method().as_str(), req.path()) {
        let Some(c) = caller else {
            return Err(HttpError::from(AuthError::Missing).into());
        };
        match gw.room.touch(c.member_id).await {
            Ok(true) => {}
            Ok(false) => {
                metrics::counter!("queue_protected_refused_total").increment(1);
                return Err(QueueError::AdmissionRequired.into());
            }
            Err(err) => return Err(QueueError::Store(err).into()),
        }
    }

    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if let Some(limit) = limit {
        limit_headers(headers, limit);
    }
    if refresh_needed && !headers.contains_key(TOKEN_REFRESH_NEEDED) {
        headers.insert(
            HeaderName::from_static("x-token-refresh-needed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(res)
}

/// The caller the edge verified (handlers behind a non-public path always have one).
pub fn caller(req: &actix_web::HttpRequest) -> Result<Caller, HttpError> {
    req.extensions()
        .get::<Caller>()
        .copied()
        .ok_or_else(|| AuthError::Missing.into())
}
