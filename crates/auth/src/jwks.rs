//! The JSON Web Key Set member publishes at `/.well-known/jwks.json` (RFC 7517, Ed25519 keys
//! as RFC 8037 `OKP`), with one extension member: `status` tells verifiers whether a key
//! still signs (`active`) or only verifies tokens issued before it was retired (`retired`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Retired,
}

fn active() -> KeyStatus {
    KeyStatus::Active
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(default = "active")]
    pub status: KeyStatus,
}

impl Jwk {
    /// An Ed25519 signing key's public half.
    pub fn ed25519(kid: &str, x_base64url: &str, status: KeyStatus) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x_base64url.into(),
            kid: kid.into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
            status,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}
