//! Service identity: who is calling an `/internal/**` route.
//!
//! Each service holds its own Ed25519 key (`SERVICE_IDENTITY_KEY`). A caller mints a
//! short-lived JWT for one callee and sends it as `Authorization: Bearer …`:
//!
//! - header: `alg=EdDSA`, `typ=service+jwt`, `kid` = the caller's name;
//! - claims: `iss` = `sub` = the caller, `aud` = the callee, `iat`, `exp` (default 60 s
//!   later), `jti`.
//!
//! The callee ([`ServicePeers`]) knows each caller's public key (`SERVICE_IDENTITY_PEERS`)
//! and accepts a token only if: the algorithm is EdDSA, `typ` is `service+jwt`, `kid` names a
//! known peer whose key made the signature, `iss` and `sub` are that peer, `aud` is the
//! callee itself (a token minted for member does not open content), it has not expired and
//! was not issued in the future (both with `SERVICE_TOKEN_LEEWAY_SECONDS`), and it lives no
//! longer than [`MAX_LIFETIME`]. Which caller may call which route is the route's own
//! [`crate::RequireService`].
//!
//! Member access tokens and service tokens never pass for each other: a service token has
//! no `typ`/`role` claims and a `kid` that member's key set does not publish, so the access
//! token [`crate::Verifier`] refuses it; an access token has `typ=JWT`, no `aud` and a
//! member `kid`, so [`ServicePeers`] refuses it.
//!
//! **Development defaults.** Without configuration, a service's key is derived from the
//! public constant [`DEV_KEY_CONTEXT`] and its name, and every service's derived public key
//! is a peer, so the dev stack and the tests run with nothing set. With `DAILYFEED_ENV=
//! production` a missing key or peer list stops startup, and so does a development key
//! configured by hand (anyone can derive it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use service_runtime::config::ranged_or;
use service_runtime::{ConfigError, EnvSource, Environment, ServiceName};

/// The JWT header `typ` of a service token.
pub const SERVICE_TOKEN_TYPE: &str = "service+jwt";
/// The longest lifetime (`exp - iat`) a callee accepts.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);
/// The public constant development keys are derived from (with the service's name).
pub const DEV_KEY_CONTEXT: &str = "dailyfeed development service identity v1:";

const KEY_VAR: &str = "SERVICE_IDENTITY_KEY";
const PEERS_VAR: &str = "SERVICE_IDENTITY_PEERS";
const LIFETIME_VAR: &str = "SERVICE_TOKEN_SECONDS";
const LEEWAY_VAR: &str = "SERVICE_TOKEN_LEEWAY_SECONDS";

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// What a service token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The calling service.
    pub iss: String,
    /// The calling service (the same as `iss`).
    pub sub: String,
    /// The service called.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// The development seed of `service`: SHA-256 of [`DEV_KEY_CONTEXT`] and its name. Public
/// by design — development only.
pub fn dev_seed(service: ServiceName) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(format!("{DEV_KEY_CONTEXT}{}", service.as_str())).into()
}

/// The Ed25519 public key of a seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// base64url without padding, the form keys are configured in.
pub fn encode_key(bytes: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_key(raw: &str) -> Result<[u8; 32], String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim().trim_end_matches('='))
        .map_err(|_| "not base64url".to_owned())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("{} bytes, want 32", bytes.len()))
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A token could not be minted (only a broken key does this).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot mint a service token: {0}")]
pub struct MintError(String);

/// This service's identity, for its calls to others. Cheap to clone; tokens are cached per
/// audience and re-minted once less than a third of their lifetime is left.
#[derive(Clone)]
pub struct ServiceIdentity {
    inner: Arc<IdentityInner>,
}

struct IdentityInner {
    me: ServiceName,
    key: EncodingKey,
    public: [u8; 32],
    lifetime: Duration,
    /// audience → (token, exp).
    tokens: Mutex<HashMap<String, (Arc<str>, i64)>>,
}

impl std::fmt::Debug for ServiceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceIdentity")
            .field("service", &self.inner.me)
            .field("public_key", &encode_key(&self.inner.public))
            .finish_non_exhaustive()
    }
}

impl ServiceIdentity {
    pub fn new(me: ServiceName, seed: [u8; 32], lifetime: Duration) -> Self {
        let der = [PKCS8_ED25519_PREFIX.as_slice(), &seed].concat();
        Self {
            inner: Arc::new(IdentityInner {
                me,
                key: EncodingKey::from_ed_der(&der),
                public: public_key(&seed),
                lifetime: lifetime.clamp(Duration::from_secs(1), MAX_LIFETIME),
                tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// `service`'s development identity (the key every dev peer list knows).
    pub fn development(me: ServiceName) -> Self {
        Self::new(me, dev_seed(me), Duration::from_secs(60))
    }

    /// `SERVICE_IDENTITY_KEY` (base64url 32-byte Ed25519 seed; unset: the development key,
    /// refused when `DAILYFEED_ENV=production`, as is the development key set by hand) and
    /// `SERVICE_TOKEN_SECONDS` (10–300, default 60).
    pub fn from_env(env: &dyn EnvSource, me: ServiceName) -> Result<Self, ConfigError> {
        let environment = Environment::from_env(env)?;
        let lifetime = Duration::from_secs(ranged_or(env, LIFETIME_VAR, 60, 10..=300)?);
        let seed = match env.get(KEY_VAR).filter(|v| !v.trim().is_empty()) {
            None => {
                environment.dev_secret(
                    KEY_VAR,
                    "anyone can derive this service's key and call other services as it",
                )?;
                dev_seed(me)
            }
            Some(raw) => {
                let seed =
                    decode_key(&raw).map_err(|e| ConfigError::new(KEY_VAR, "<hidden>", e))?;
                if environment.is_production() && seed == dev_seed(me) {
                    return Err(ConfigError::new(
                        KEY_VAR,
                        "<hidden>",
                        "is the public development key, refused when DAILYFEED_ENV=production",
                    ));
                }
                seed
            }
        };
        Ok(Self::new(me, seed, lifetime))
    }

    pub fn service(&self) -> ServiceName {
        self.inner.me
    }

    /// The public key peers configure for this service (base64url).
    pub fn public_key(&self) -> String {
        encode_key(&self.inner.public)
    }

    /// A token for calls to `audience` (a service name), from the cache while it has at
    /// least a third of its lifetime left.
    pub fn token_for(&self, audience: &str) -> Result<Arc<str>, MintError> {
        let now = now_seconds();
        let margin = secs(self.inner.lifetime) / 3;
        let mut tokens = self
            .inner
            .tokens
            .lock()
            .map_err(|_| MintError("the token cache is poisoned".into()))?;
        if let Some((token, exp)) = tokens.get(audience)
            && *exp - now > margin
        {
            return Ok(Arc::clone(token));
        }
        let exp = now.saturating_add(secs(self.inner.lifetime));
        let token: Arc<str> = self.mint_at(audience, now, exp)?.into();
        tokens.insert(audience.to_owned(), (Arc::clone(&token), exp));
        Ok(token)
    }

    /// A token for `audience` issued at `iat` and expiring at `exp` (seconds since the
    /// epoch), uncached. [`Self::token_for`] is the one to call; this one lets tests make
    /// expired or over-long tokens.
    pub fn mint_at(&self, audience: &str, iat: i64, exp: i64) -> Result<String, MintError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(SERVICE_TOKEN_TYPE.into());
        header.kid = Some(self.inner.me.as_str().into());
        let me = self.inner.me.as_str().to_owned();
        let claims = ServiceClaims {
            iss: me.clone(),
            sub: me,
            aud: audience.to_owned(),
            iat,
            exp,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&header, &claims, &self.inner.key)
            .map_err(|e| MintError(e.to_string()))
    }
}

impl resilience::CallCredentials for ServiceIdentity {
    fn authorization(&self, downstream: &str) -> Result<String, String> {
        self.token_for(downstream)
            .map(|token| format!("Bearer {token}"))
            .map_err(|e| e.to_string())
    }
}

/// A verified service token: who called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    pub service: ServiceName,
    pub jti: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

/// Why a service token was refused. The messages are safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAuthError {
    #[error("this route needs a service token")]
    Missing,
    #[error("the service token has expired")]
    Expired,
    #[error("the service token is not for this service")]
    WrongAudience,
    #[error("{0}")]
    Invalid(&'static str),
}

/// The callers this service accepts, by public key. Cheap to clone.
#[derive(Clone)]
pub struct ServicePeers {
    inner: Arc<PeersInner>,
}

struct PeersInner {
    me: ServiceName,
    keys: HashMap<ServiceName, DecodingKey>,
    validation: Validation,
    leeway: i64,
}

impl std::fmt::Debug for ServicePeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut peers: Vec<&str> = self.inner.keys.keys().map(|s| s.as_str()).collect();
        peers.sort_unstable();
        f.debug_struct("ServicePeers")
            .field("service", &self.inner.me)
            .field("peers", &peers)
            .finish()
    }
}

impl ServicePeers {
    /// `me` accepting the callers in `peers` (public keys), with `leeway` seconds of clock
    /// skew on `exp` and `iat`.
    pub fn new(me: ServiceName, peers: &HashMap<ServiceName, [u8; 32]>, leeway: u64) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        validation.set_audience(&[me.as_str()]);
        validation.leeway = leeway;
        validation.validate_nbf = false;
        let keys = peers
            .iter()
            .map(|(name, public)| (*name, DecodingKey::from_ed_components(&encode_key(public))))
            .filter_map(|(name, key)| key.ok().map(|key| (name, key)))
            .collect();
        Self {
            inner: Arc::new(PeersInner {
                me,
                keys,
                validation,
                leeway: i64::try_from(leeway).unwrap_or(0),
            }),
        }
    }

    /// Every service's development key is a peer.
    pub fn development(me: ServiceName) -> Self {
        Self::new(me, &dev_peers(), 5)
    }

    /// `SERVICE_IDENTITY_PEERS` (`timeline=<base64url public key>,activity=…`; unset: every
    /// service's development key, refused when `DAILYFEED_ENV=production`, as is any
    /// development key in the list) and `SERVICE_TOKEN_LEEWAY_SECONDS` (0–60, default 5).
    pub fn from_env(env: &dyn EnvSource, me: ServiceName) -> Result<Self, ConfigError> {
        let environment = Environment::from_env(env)?;
        let leeway = ranged_or(env, LEEWAY_VAR, 5_u64, 0..=60)?;
        let peers = match env.get(PEERS_VAR).filter(|v| !v.trim().is_empty()) {
            None => {
                environment.dev_secret(
                    PEERS_VAR,
                    "callers are accepted on public development keys anyone can derive",
                )?;
                dev_peers()
            }
            Some(raw) => {
                let peers = parse_peers(&raw).map_err(|e| ConfigError::new(PEERS_VAR, &raw, e))?;
                if environment.is_production()
                    && let Some((name, _)) = peers
                        .iter()
                        .find(|(name, key)| **key == public_key(&dev_seed(**name)))
                {
                    return Err(ConfigError::new(
                        PEERS_VAR,
                        &raw,
                        format!(
                            "{name}'s key is the public development key, refused when DAILYFEED_ENV=production"
                        ),
                    ));
                }
                peers
            }
        };
        Ok(Self::new(me, &peers, leeway))
    }

    pub fn service(&self) -> ServiceName {
        self.inner.me
    }

    /// Checks a service token completely (see the module docs).
    pub fn verify(&self, token: &str) -> Result<ServiceCaller, ServiceAuthError> {
        use ServiceAuthError::Invalid;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Invalid("the service token is malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(Invalid("the service token's algorithm is not accepted"));
        }
        if header.typ.as_deref() != Some(SERVICE_TOKEN_TYPE) {
            return Err(Invalid("not a service token"));
        }
        let caller = header
            .kid
            .as_deref()
            .and_then(ServiceName::from_name)
            .ok_or(Invalid("the service token names no known service"))?;
        let key = self
            .inner
            .keys
            .get(&caller)
            .ok_or(Invalid("the service token names no known service"))?;
        let claims = jsonwebtoken::decode::<ServiceClaims>(token, key, &self.inner.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ServiceAuthError::Expired,
                ErrorKind::InvalidAudience => ServiceAuthError::WrongAudience,
                _ => Invalid("the service token's signature or claims are invalid"),
            })?
            .claims;
        if claims.iss != caller.as_str() || claims.sub != caller.as_str() {
            return Err(Invalid(
                "the service token's issuer is not its key's service",
            ));
        }
        let now = now_seconds();
        if claims.iat > now + self.inner.leeway {
            return Err(Invalid("the service token was issued in the future"));
        }
        if claims.exp.saturating_sub(claims.iat) > secs(MAX_LIFETIME) {
            return Err(Invalid("the service token lives too long"));
        }
        Ok(ServiceCaller {
            service: caller,
            jti: claims.jti,
            expires_at: claims.exp,
        })
    }
}

/// Every service's development public key.
pub fn dev_peers() -> HashMap<ServiceName, [u8; 32]> {
    ServiceName::ALL
        .into_iter()
        .map(|s| (s, public_key(&dev_seed(s))))
        .collect()
}

/// `name=key,name=key` (keys base64url, 32 bytes).
pub fn parse_peers(raw: &str) -> Result<HashMap<ServiceName, [u8; 32]>, String> {
    let mut peers = HashMap::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, key) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}` is not `service=public-key`"))?;
        let service = ServiceName::from_name(name.trim())
            .ok_or_else(|| format!("`{}` is not a dailyfeed service", name.trim()))?;
        let key = decode_key(key).map_err(|e| format!("{service}'s key: {e}"))?;
        if peers.insert(service, key).is_some() {
            return Err(format!("{service} is listed twice"));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use test_harness::vars as env;

    #[test]
    fn a_token_for_one_callee_verifies_there_and_nowhere_else() {
        let timeline = ServiceIdentity::development(ServiceName::Timeline);
        let member = ServicePeers::development(ServiceName::Member);
        let content = ServicePeers::development(ServiceName::Content);
        let token = timeline.token_for("member").unwrap();
        let caller = member.verify(&token).unwrap();
        assert_eq!(caller.service, ServiceName::Timeline);
        assert_eq!(content.verify(&token), Err(ServiceAuthError::WrongAudience));
    }

    #[test]
    fn tokens_are_cached_per_audience() {
        let timeline = ServiceIdentity::development(ServiceName::Timeline);
        let a = timeline.token_for("member").unwrap();
        assert_eq!(a, timeline.token_for("member").unwrap());
        assert_ne!(a, timeline.token_for("content").unwrap());
    }

    #[test]
    fn expired_future_and_overlong_tokens_are_refused() {
        let search = ServiceIdentity::development(ServiceName::Search);
        let content = ServicePeers::development(ServiceName::Content);
        let now = now_seconds();
        let expired = search.mint_at("content", now - 120, now - 60).unwrap();
        assert_eq!(content.verify(&expired), Err(ServiceAuthError::Expired));
        let future = search.mint_at("content", now + 600, now + 660).unwrap();
        assert!(matches!(
            content.verify(&future),
            Err(ServiceAuthError::Invalid(_))
        ));
        let long = search.mint_at("content", now, now + 3600).unwrap();
        assert!(matches!(
            content.verify(&long),
            Err(ServiceAuthError::Invalid(_))
        ));
    }

    #[test]
    fn a_key_that_is_not_the_named_services_is_refused() {
        // Signed by a key that claims to be timeline's but is not the configured one.
        let impostor =
            ServiceIdentity::new(ServiceName::Timeline, [7; 32], Duration::from_secs(60));
        let member = ServicePeers::development(ServiceName::Member);
        let token = impostor.token_for("member").unwrap();
        assert!(matches!(
            member.verify(&token),
            Err(ServiceAuthError::Invalid(_))
        ));
        // A service that is no peer at all.
        let only_activity = ServicePeers::new(
            ServiceName::Member,
            &[(
                ServiceName::Activity,
                public_key(&dev_seed(ServiceName::Activity)),
            )]
            .into(),
            5,
        );
        let token = ServiceIdentity::development(ServiceName::Timeline)
            .token_for("member")
            .unwrap();
        assert!(matches!(
            only_activity.verify(&token),
            Err(ServiceAuthError::Invalid(_))
        ));
    }

    #[test]
    fn configured_keys_are_read_and_production_refuses_development_ones() {
        let seed = [42_u8; 32];
        let key = encode_key(&seed);
        let id = ServiceIdentity::from_env(&env(&[(KEY_VAR, &key)]), ServiceName::Search).unwrap();
        assert_eq!(id.public_key(), encode_key(&public_key(&seed)));
        let peers_raw = format!("search={}", id.public_key());
        let peers =
            ServicePeers::from_env(&env(&[(PEERS_VAR, &peers_raw)]), ServiceName::Content).unwrap();
        assert!(peers.verify(&id.token_for("content").unwrap()).is_ok());

        let prod = [("DAILYFEED_ENV", "production")];
        assert_eq!(
            ServiceIdentity::from_env(&env(&prod), ServiceName::Search)
                .unwrap_err()
                .var,
            KEY_VAR
        );
        assert_eq!(
            ServicePeers::from_env(&env(&prod), ServiceName::Content)
                .unwrap_err()
                .var,
            PEERS_VAR
        );
        let dev_key = encode_key(&dev_seed(ServiceName::Search));
        let err =
            ServiceIdentity::from_env(&env(&[prod[0], (KEY_VAR, &dev_key)]), ServiceName::Search)
                .unwrap_err();
        assert!(err.to_string().contains("development key"), "{err}");
        assert!(
            !err.to_string().contains(&dev_key),
            "the key is never echoed: {err}"
        );
        let dev_peer = format!(
            "search={}",
            encode_key(&public_key(&dev_seed(ServiceName::Search)))
        );
        assert!(
            ServicePeers::from_env(
                &env(&[prod[0], (PEERS_VAR, &dev_peer)]),
                ServiceName::Content
            )
            .is_err()
        );
        assert!(
            ServiceIdentity::from_env(&env(&[prod[0], (KEY_VAR, &key)]), ServiceName::Search)
                .is_ok()
        );
    }

    #[test]
    fn malformed_peer_lists_name_the_problem() {
        assert!(
            parse_peers("timeline")
                .unwrap_err()
                .contains("service=public-key")
        );
        assert!(
            parse_peers("nobody=AAAA")
                .unwrap_err()
                .contains("not a dailyfeed service")
        );
        assert!(
            parse_peers("timeline=AAAA")
                .unwrap_err()
                .contains("want 32")
        );
        let k = encode_key(&[1; 32]);
        assert!(
            parse_peers(&format!("timeline={k},timeline={k}"))
                .unwrap_err()
                .contains("twice")
        );
        assert_eq!(parse_peers(&format!(" timeline={k} , ")).unwrap().len(), 1);
    }
}
