//! What handlers share.

use auth::Blacklist;
use deadpool_redis::Pool;
use pagination::CursorCodec;
use ratelimit::RateLimiter;
use sea_orm::DatabaseConnection;
use service_runtime::TrustedProxies;

use crate::config::LoginLimits;
use crate::domain::oauth::OAuthProviders;
use crate::domain::passwords::PasswordHasher;
use crate::domain::tokens::{KnownDevices, TokenIssuer};

pub struct AppState {
    pub db: DatabaseConnection,
    pub redis: Pool,
    pub redis_prefix: String,
    pub tokens: TokenIssuer,
    pub passwords: PasswordHasher,
    pub limiter: RateLimiter,
    pub login: LoginLimits,
    pub devices: KnownDevices,
    pub blacklist: Blacklist,
    pub oauth: OAuthProviders,
    pub cursor: CursorCodec,
    pub cookie_secure: bool,
    /// Whose `X-Forwarded-For` entries name the client (see [`crate::api::client_ip`]).
    pub trusted_proxies: TrustedProxies,
}
