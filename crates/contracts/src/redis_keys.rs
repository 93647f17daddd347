//! Redis key formats shared across services. Every key is built with the service's
//! `REDIS_KEY_PREFIX` in front, so tests and tenants sharing one Redis never collide. Keys
//! read by more than one service (the access-token blacklist) must use the same prefix in
//! every service of a deployment.

/// An access token's `jti` that logout revoked; kept until the token's `exp`. Written by
/// member, read by every verifier.
pub fn access_blacklist(prefix: &str, jti: &str) -> String {
    format!("{prefix}auth:blacklist:{jti}")
}

/// A member's session epoch (see `AccessClaims::epoch`): raised by a member-wide revocation,
/// read by member when it issues tokens and by every verifier.
pub fn member_epoch(prefix: &str, member_id: i64) -> String {
    format!("{}{member_id}", member_epochs(prefix))
}

/// What every [`member_epoch`] key starts with (for a `SCAN … MATCH {this}*`).
pub fn member_epochs(prefix: &str) -> String {
    format!("{prefix}auth:member-epoch:")
}

/// A refresh token, by the SHA-256 (hex) of its value — the value itself is never stored.
pub fn refresh_token(prefix: &str, token_hash: &str) -> String {
    format!("{prefix}auth:refresh:{token_hash}")
}

/// A refresh-token family (one login session and all its rotations).
pub fn refresh_family(prefix: &str, family_id: &str) -> String {
    format!("{prefix}auth:family:{family_id}")
}

/// The set of a member's live families (for logout-all).
pub fn member_families(prefix: &str, member_id: i64) -> String {
    format!("{prefix}auth:member_families:{member_id}")
}

/// A rate-limit window: `scope` names the limit (e.g. `login:ip`), `subject` who is limited.
pub fn rate_limit(prefix: &str, scope: &str, subject: &str) -> String {
    format!("{prefix}ratelimit:{scope}:{subject}")
}

/// An OAuth authorization in flight (state → PKCE verifier, nonce, provider).
pub fn oauth_state(prefix: &str, state: &str) -> String {
    format!("{prefix}oauth:state:{state}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix() {
        assert_eq!(access_blacklist("t1:", "abc"), "t1:auth:blacklist:abc");
        assert_eq!(member_families("", 7), "auth:member_families:7");
        assert_eq!(
            rate_limit("p:", "login:ip", "1.2.3.4"),
            "p:ratelimit:login:ip:1.2.3.4"
        );
    }
}
