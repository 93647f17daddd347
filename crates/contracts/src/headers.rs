//! HTTP header names with a meaning in dailyfeed. Handlers and gateways use these constants,
//! never literals.

/// The authenticated member id, injected by the gateway after verifying the access token.
pub const USER_ID: &str = "X-User-Id";
/// The authenticated member's role (`USER`, `ADMIN`), injected alongside [`USER_ID`].
pub const USER_TYPE: &str = "X-User-Type";
/// `true` when the client should refresh its access token: it expired (with a 401), or it was
/// signed by a retired key that still verifies (with a normal answer).
pub const TOKEN_REFRESH_NEEDED: &str = "X-Token-Refresh-Needed";
/// `true` when refreshing will not help: the token is blacklisted or the refresh token is
/// expired, revoked or reused. The client must log in again.
pub const RELOGIN_REQUIRED: &str = "X-Relogin-Required";
/// Makes a retried create return the first result instead of creating twice.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// W3C trace context, on HTTP requests and on Kafka record headers.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// Set on answers served from degraded data (e.g. author info unavailable).
pub const DEGRADED: &str = "X-Degraded";
