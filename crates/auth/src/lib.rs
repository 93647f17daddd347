//! Access-token verification, the same in every service.
//!
//! Tokens are EdDSA (Ed25519) JWTs issued by member. Only `EdDSA` is accepted — `none`, HS*
//! and algorithm swaps fail before any key is used. The `kid` must name a key in member's
//! JWKS (cached; an unknown `kid` triggers at most one refetch per `JWKS_MIN_REFETCH_SECONDS`).
//! `exp`, `kid` and `typ=access` are required. The seed's header rules:
//!
//! | token | answer |
//! |---|---|
//! | expired | 401 `token_expired` + `X-Token-Refresh-Needed: true` |
//! | signed by a retired (still valid) key | normal answer + `X-Token-Refresh-Needed: true` |
//! | blacklisted by logout | 401 `token_revoked` + `X-Relogin-Required: true` |
//! | anything else wrong | 401 `invalid_token` |
//!
//! Service-to-service calls carry a service token instead ([`service_identity`]): a
//! short-lived EdDSA JWT minted by the caller for one callee, checked on every `/internal/**`
//! route by [`RequireService`]. `/admin/**` routes take [`RequireAdmin`]: an ADMIN member's
//! access token from an address in `ADMIN_ALLOWED_CIDRS`.

mod blacklist;
mod extract;
mod guard;
mod jwks;
mod openapi;
pub mod service_identity;
mod verifier;

pub use blacklist::Blacklist;
pub use extract::{AuthMember, OptionalAuthMember, bearer_token};
pub use guard::{AdminGuard, RequireAdmin, RequireService, admin_member, service_caller};
pub use jwks::{Jwk, JwkSet, KeyStatus};
pub use openapi::BearerAuth;
pub use service_identity::{ServiceAuthError, ServiceCaller, ServiceIdentity, ServicePeers};
pub use verifier::{
    AuthError, AuthSettings, Authenticated, HttpJwks, JwksSource, MAX_LEEWAY_SECONDS, Verifier,
};
