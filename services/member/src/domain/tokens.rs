//! Issuing the access + refresh pair a login, refresh or OAuth callback answers with, and
//! the device tokens that mark a browser as one that logged in to an account before.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contracts::auth::MemberRole;
use deadpool_redis::Pool;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::keys::KeyRing;
use super::refresh::RefreshTokens;

/// What a successful login answers (the refresh token also goes in an HttpOnly cookie).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub member_id: i64,
}

#[derive(Clone)]
pub struct TokenIssuer {
    pub keys: Arc<KeyRing>,
    pub refresh: RefreshTokens,
    pub access_ttl: Duration,
}

impl TokenIssuer {
    /// A signed access token for `member_id`.
    pub async fn access_token(&self, member_id: i64, role: MemberRole) -> anyhow::Result<String> {
        self.keys
            .access_token(member_id, role, self.access_ttl)
            .await
    }

    /// A new session: access token + the first refresh token of a new family.
    pub async fn login(&self, member_id: i64, role: MemberRole) -> anyhow::Result<TokenPair> {
        let refresh_token = self.refresh.issue(member_id).await?;
        self.pair(member_id, role, refresh_token).await
    }

    pub async fn pair(
        &self,
        member_id: i64,
        role: MemberRole,
        refresh_token: String,
    ) -> anyhow::Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.access_token(member_id, role).await?,
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
            refresh_token,
            member_id,
        })
    }
}

pub fn role_of(role: &str) -> MemberRole {
    match role {
        "ADMIN" => MemberRole::Admin,
        _ => MemberRole::User,
    }
}

/// Known devices (OWASP's "device cookies"): a successful password login hands the browser a
/// random token bound to the account, so that while the account's failure ceiling is reached
/// (someone is guessing its password from many clients) its owner still logs in from a
/// browser that logged in before. Redis keeps only the token's SHA-256 → the account's limit
/// subject, for `LOGIN_DEVICE_TTL_SECONDS`, renewed by each login.
#[derive(Clone)]
pub struct KnownDevices {
    pool: Pool,
    prefix: String,
    ttl: Duration,
}

/// Longest device token looked up (ours are 43 characters).
const DEVICE_TOKEN_MAX: usize = 64;

fn device_key(prefix: &str, token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}auth:login_device:{hex}")
}

impl KnownDevices {
    pub fn new(pool: Pool, prefix: &str, ttl: Duration) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether `token` is a known device of `account` (a limit subject).
    pub async fn is_known(&self, token: &str, account: &str) -> anyhow::Result<bool> {
        if token.is_empty() || token.len() > DEVICE_TOKEN_MAX {
            return Ok(false);
        }
        let mut conn = self.pool.get().await?;
        let bound: Option<String> = redis::cmd("GET")
            .arg(device_key(&self.prefix, token))
            .query_async(&mut *conn)
            .await?;
        Ok(bound.as_deref() == Some(account))
    }

    /// After a successful login to `account`: the device token to hand out — `known` (the
    /// one presented, already this account's) with its lifetime renewed, or a new one.
    pub async fn remember(&self, known: Option<&str>, account: &str) -> anyhow::Result<String> {
        let token = match known {
            Some(token) => token.to_owned(),
            None => URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        };
        let mut conn = self.pool.get().await?;
        redis::cmd("SET")
            .arg(device_key(&self.prefix, &token))
            .arg(account)
            .arg("PX")
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX))
            .query_async::<()>(&mut *conn)
            .await?;
        Ok(token)
    }
}
