//! The admission token: proof, signed by the gateway, that a member was let in. Short-lived
//! (`QUEUE_ADMISSION_TOKEN_TTL_SECONDS`), an EdDSA JWT like member's access tokens, so a
//! service verifies it with the public key from `GET /api/v1/queue/jwks.json` and holds no
//! secret. Every gateway replica must share `QUEUE_ADMISSION_KEY` for tokens signed on one
//! to verify against the key set served by another.

use std::time::Duration;

use auth::{Jwk, JwkSet, KeyStatus};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// RFC 8410 PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// `iss` of every admission token.
pub const ISSUER: &str = "dailyfeed-queue";
/// `typ` of every admission token, so it can never pass as an access token (and back).
pub const TOKEN_TYPE: &str = "admission";

/// What an admission token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionClaims {
    /// The member id, decimal.
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub typ: String,
}

/// A 32-byte Ed25519 seed that never prints.
#[derive(Clone)]
pub struct AdmissionKey([u8; 32]);

impl AdmissionKey {
    /// From base64url (or standard base64) of 32 bytes.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
            .map_err(|_| "not base64".to_owned())?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 32 bytes (an Ed25519 seed), base64url".to_owned())?;
        Ok(Self(seed))
    }

    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl std::fmt::Debug for AdmissionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdmissionKey(<redacted>)")
    }
}

/// Signs and verifies admission tokens. Cheap to clone.
#[derive(Clone)]
pub struct AdmissionSigner {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_b64: String,
    ttl: Duration,
}

impl AdmissionSigner {
    pub fn new(key: &AdmissionKey, ttl: Duration) -> anyhow::Result<Self> {
        let public = ed25519_dalek::SigningKey::from_bytes(&key.0)
            .verifying_key()
            .to_bytes();
        let public_b64 = URL_SAFE_NO_PAD.encode(public);
        let der = [PKCS8_ED25519_PREFIX.as_slice(), &key.0].concat();
        Ok(Self {
            kid: format!(
                "adm-{}",
                URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..9])
            ),
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_components(&public_b64)?,
            public_b64,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `member_id`, issued at `now` (seconds since the epoch), and its `exp`.
    pub fn sign(&self, member_id: i64, now: i64) -> anyhow::Result<(String, i64)> {
        let exp = now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = AdmissionClaims {
            sub: member_id.to_string(),
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            exp,
            iss: ISSUER.to_owned(),
            typ: TOKEN_TYPE.to_owned(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        Ok((jsonwebtoken::encode(&header, &claims, &self.encoding)?, exp))
    }

    /// The member id a valid, unexpired admission token names.
    pub fn verify(&self, token: &str) -> Result<i64, String> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.set_issuer(&[ISSUER]);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<AdmissionClaims>(token, &self.decoding, &validation)
            .map_err(|e| format!("invalid admission token: {e}"))?;
        if data.claims.typ != TOKEN_TYPE {
            return Err("not an admission token".into());
        }
        data.claims
            .sub
            .parse::<i64>()
            .map_err(|_| "the admission token's subject is not a member".into())
    }

    /// The public key, for other services.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![Jwk::ed25519(&self.kid, &self.public_b64, KeyStatus::Active)],
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_signed_token_verifies_and_names_the_member() {
        let signer =
            AdmissionSigner::new(&AdmissionKey::random(), Duration::from_secs(60)).unwrap();
        let (token, exp) = signer.sign(42, now()).unwrap();
        assert!(exp > now());
        assert_eq!(signer.verify(&token), Ok(42));
    }

    #[test]
    fn another_key_or_an_expired_token_is_refused() {
        let signer =
            AdmissionSigner::new(&AdmissionKey::random(), Duration::from_secs(60)).unwrap();
        let other = AdmissionSigner::new(&AdmissionKey::random(), Duration::from_secs(60)).unwrap();
        let (token, _) = other.sign(1, now()).unwrap();
        assert!(signer.verify(&token).is_err());
        let (old, _) = signer.sign(1, now() - 3600).unwrap();
        assert!(signer.verify(&old).is_err());
    }

    #[test]
    fn keys_parse_from_base64url_and_never_print() {
        let raw = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let key = AdmissionKey::parse(&raw).unwrap();
        assert_eq!(format!("{key:?}"), "AdmissionKey(<redacted>)");
        assert!(AdmissionKey::parse("c2hvcnQ").is_err());
        assert!(AdmissionKey::parse("***").is_err());
    }
}
