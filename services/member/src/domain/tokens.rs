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

use auth::Blacklist;

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
    /// Session epochs (member-wide revocation) live with the logout blacklist.
    pub revocations: Blacklist,
}

impl TokenIssuer {
    /// A signed access token for `member_id` at session `epoch`.
    pub async fn access_token(
        &self,
        member_id: i64,
        role: MemberRole,
        epoch: u64,
    ) -> anyhow::Result<String> {
        self.keys
            .access_token_at(member_id, role, self.access_ttl, epoch)
            .await
    }

    /// The member's session epoch now: read it before checking a password, so that a
    /// member-wide revocation racing the check leaves the login with a stale epoch.
    pub async fn epoch(&self, member_id: i64) -> anyhow::Result<u64> {
        self.revocations.member_epoch(member_id).await
    }

    /// A new session at the member's current epoch.
    pub async fn login(&self, member_id: i64, role: MemberRole) -> anyhow::Result<TokenPair> {
        let epoch = self.epoch(member_id).await?;
        self.login_at(member_id, role, epoch).await
    }

    /// A new session at `epoch`: access token + the first refresh token of a new family.
    pub async fn login_at(
        &self,
        member_id: i64,
        role: MemberRole,
        epoch: u64,
    ) -> anyhow::Result<TokenPair> {
        let refresh_token = self.refresh.issue(member_id, epoch).await?;
        self.pair(member_id, role, refresh_token, epoch).await
    }

    pub async fn pair(
        &self,
        member_id: i64,
        role: MemberRole,
        refresh_token: String,
        epoch: u64,
    ) -> anyhow::Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.access_token(member_id, role, epoch).await?,
            token_type: "Bearer",
            expires_in: self.access_ttl.as_secs(),
            refresh_token,
            member_id,
        })
    }

    /// Ends every session of the member at once: the session epoch is raised (every access
    /// token issued before is refused everywhere, and so is any refresh family started
    /// before), then every refresh family is revoked. Returns how many families there were.
    pub async fn end_every_session(&self, member_id: i64) -> anyhow::Result<usize> {
        // Kept as long as anything issued before could live: a family, or a token in leeway.
        let keep_for = self.refresh.family_lifetime()
            + self.access_ttl
            + Duration::from_secs(auth::MAX_LEEWAY_SECONDS);
        self.revocations.revoke_member(member_id, keep_for).await?;
        self.refresh.revoke_all(member_id).await
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
