//! What an access token claims. Issued by member, verified everywhere.

use serde::{Deserialize, Serialize};

/// Claims of a dailyfeed access token (a JWT; header carries `kid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The member id, as a decimal string (JWT `sub` is a string).
    pub sub: String,
    /// Unique token id; logout blacklists it until `exp`.
    pub jti: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Always [`TokenType::Access`] for tokens that authorise API calls.
    pub typ: TokenType,
    pub role: MemberRole,
    /// The member's session epoch when the token was issued: a member-wide revocation
    /// (logout everywhere, an account taken over by its email's verified owner) raises the
    /// epoch, and every token issued before it is refused at once. 0 (and absent) until the
    /// first such revocation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl AccessClaims {
    /// The member id `sub` names, if it is a positive integer.
    pub fn member_id(&self) -> Option<i64> {
        self.sub.parse().ok().filter(|id| *id > 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberRole {
    User,
    Admin,
}

impl MemberRole {
    /// The value carried in the `X-User-Type` header.
    pub fn as_header_value(self) -> &'static str {
        match self {
            MemberRole::User => "USER",
            MemberRole::Admin => "ADMIN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_id_rejects_non_numeric_and_non_positive_subjects() {
        let mut claims = AccessClaims {
            sub: "42".into(),
            jti: "j".into(),
            iat: 0,
            exp: 1,
            typ: TokenType::Access,
            role: MemberRole::User,
            epoch: 0,
        };
        assert_eq!(claims.member_id(), Some(42));
        claims.sub = "0".into();
        assert_eq!(claims.member_id(), None);
        claims.sub = "abc".into();
        assert_eq!(claims.member_id(), None);
    }

    #[test]
    fn claims_round_trip_with_lowercase_typ_and_upper_role() {
        let json = r#"{"sub":"7","jti":"x","iat":1,"exp":2,"typ":"access","role":"ADMIN"}"#;
        let claims: AccessClaims = serde_json::from_str(json).expect("parse");
        assert_eq!(claims.role, MemberRole::Admin);
        assert_eq!(serde_json::to_string(&claims).expect("serialise"), json);
        let raised =
            r#"{"sub":"7","jti":"x","iat":1,"exp":2,"typ":"access","role":"USER","epoch":3}"#;
        let claims: AccessClaims = serde_json::from_str(raised).expect("parse");
        assert_eq!(claims.epoch, 3);
        assert_eq!(serde_json::to_string(&claims).expect("serialise"), raised);
    }
}
