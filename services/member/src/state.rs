//! What handlers share.

use auth::Blacklist;
use deadpool_redis::Pool;
use pagination::CursorCodec;
use ratelimit::RateLimiter;
use sea_orm::DatabaseConnection;

use crate::domain::oauth::OAuthProviders;
use crate::domain::passwords::PasswordHasher;
use crate::domain::tokens::TokenIssuer;

pub struct AppState {
    pub db: DatabaseConnection,
    pub redis: Pool,
    pub redis_prefix: String,
    pub tokens: TokenIssuer,
    pub passwords: PasswordHasher,
    pub limiter: RateLimiter,
    pub login_attempts_per_minute: u32,
    pub blacklist: Blacklist,
    pub oauth: OAuthProviders,
    pub cursor: CursorCodec,
    pub cookie_secure: bool,
    pub trust_forwarded_for: bool,
}
