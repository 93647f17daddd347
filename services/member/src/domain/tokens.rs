//! Issuing the access + refresh pair a login, refresh or OAuth callback answers with.

use std::sync::Arc;
use std::time::Duration;

use contracts::auth::MemberRole;
use serde::Serialize;
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
