//! Verifying an access token against the issuer's published keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contracts::auth::{AccessClaims, MemberRole};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use service_runtime::config::{parse_or, ranged_or, seconds_or, url_or};
use service_runtime::redis::RedisSettings;
use service_runtime::{ConfigError, EnvSource, ServiceName};
use tokio::sync::{Mutex, RwLock};

use crate::blacklist::Blacklist;
use crate::jwks::{JwkSet, KeyStatus};

/// The most clock skew a verifier may allow (`JWT_LEEWAY_SECONDS`); revocations are kept
/// this long past a token's `exp` (see [`crate::Blacklist::add`]).
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// Where verifiers get keys and how long they keep them.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `JWKS_URL` (default `{MEMBER_URL}/.well-known/jwks.json`).
    pub jwks_url: url::Url,
    /// `JWKS_CACHE_SECONDS` (default 300): a cached key set is refreshed after this.
    pub cache_ttl: Duration,
    /// `JWKS_MIN_REFETCH_SECONDS` (default 10): an unknown `kid` refetches at most this often,
    /// so a flood of forged kids cannot hammer member.
    pub min_refetch: Duration,
    /// `JWT_LEEWAY_SECONDS` (default 0, at most [`MAX_LEEWAY_SECONDS`]): clock skew allowed
    /// on `exp` and `iat`. The blacklist keeps a revoked token past its `exp` by the maximum,
    /// so a logged-out token never works again inside the leeway.
    pub leeway: u64,
    /// `JWT_MAX_LIFETIME_SECONDS` (default 900, the access-token lifetime): a token whose
    /// `exp − iat` is longer is refused, so a leaked signing key or a misconfigured issuer
    /// cannot mint tokens that live for days.
    pub max_lifetime: Duration,
    /// `AUTH_BLACKLIST_FAIL_OPEN` (default false; read-only services may choose true): when
    /// the blacklist cannot be checked (Redis down), accept the otherwise valid token
    /// instead of answering 503. A revoked token then works until Redis is back or the
    /// token expires (≤ 15 min) — a trade a read-only feed can make, a write path must not.
    pub blacklist_fail_open: bool,
    /// `AUTH_VERIFIED_CACHE_ENTRIES` (default 65 536; 0 turns it off): how many tokens whose
    /// signature and claims were checked are remembered (by SHA-256, ~200 bytes each), so a
    /// client's next request skips the EdDSA verification (~64 µs). A remembered token is
    /// still refused once it expires or its key leaves the key set, and the blacklist is still
    /// asked every time. Size it to the tokens active within their lifetime: a cache smaller
    /// than the rotation of active clients misses nearly every time.
    pub verified_cache_entries: usize,
    /// `AUTH_BLACKLIST_MIRROR` (default true): keep a local copy of the blacklist, in sync
    /// over Redis pub/sub, instead of asking Redis on every request (see `blacklist`).
    pub blacklist_mirror: bool,
}

impl AuthSettings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let member = ServiceName::Member.peer_url(env)?;
        let default = member
            .join("/.well-known/jwks.json")
            .map_err(|e| ConfigError::new("MEMBER_URL", member.as_str(), e))?;
        Ok(Self {
            jwks_url: url_or(env, "JWKS_URL", default.as_str(), &["http", "https"])?,
            cache_ttl: seconds_or(env, "JWKS_CACHE_SECONDS", 300, 1)?,
            min_refetch: seconds_or(env, "JWKS_MIN_REFETCH_SECONDS", 10, 0)?,
            leeway: ranged_or(env, "JWT_LEEWAY_SECONDS", 0, 0..=MAX_LEEWAY_SECONDS)?,
            max_lifetime: seconds_or(env, "JWT_MAX_LIFETIME_SECONDS", 900, 1)?,
            blacklist_fail_open: parse_or(env, "AUTH_BLACKLIST_FAIL_OPEN", false)?,
            verified_cache_entries: parse_or(env, "AUTH_VERIFIED_CACHE_ENTRIES", 65_536)?,
            blacklist_mirror: parse_or(env, "AUTH_BLACKLIST_MIRROR", true)?,
        })
    }
}

/// A verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub member_id: i64,
    pub role: MemberRole,
    pub jti: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// Signed by a retired key: valid, but the client should refresh.
    pub refresh_needed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("{0}")]
    Invalid(String),
    #[error("the access token has expired")]
    Expired,
    #[error("the access token was revoked; log in again")]
    Revoked,
    #[error("cannot verify tokens right now: {0}")]
    Unavailable(String),
}

/// The remembered-token key: a digest, so the cache holds 32 bytes per token, not the token.
fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Where a verifier gets the key set from.
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    async fn fetch(&self) -> anyhow::Result<JwkSet>;
}

/// The issuer's JWKS endpoint over HTTP.
pub struct HttpJwks {
    client: reqwest::Client,
    url: url::Url,
}

impl HttpJwks {
    pub fn new(url: url::Url) -> anyhow::Result<Self> {
        service_runtime::tls::install_crypto_provider();
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()?,
            url,
        })
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        let response = self.client.get(self.url.clone()).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "JWKS answered {}",
            response.status()
        );
        Ok(response.json().await?)
    }
}

struct Key {
    decoding: DecodingKey,
    retired: bool,
}

/// What a checked signature established about a token (everything but the blacklist).
struct Verified {
    member_id: i64,
    role: MemberRole,
    jti: String,
    expires_at: i64,
    epoch: u64,
    kid: String,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Arc<Key>>,
    fetched_at: Option<Instant>,
}

/// Verifies access tokens. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    source: Box<dyn JwksSource>,
    settings: AuthSettings,
    cache: RwLock<Cache>,
    /// Serialises fetches; holds when the last one was attempted.
    fetching: Mutex<Option<Instant>>,
    validation: Validation,
    blacklist: Option<Blacklist>,
    /// SHA-256 of the token → what its signature established; `None` when turned off.
    verified: Option<quick_cache::sync::Cache<[u8; 32], Arc<Verified>>>,
}

impl Verifier {
    /// The usual verifier of a service other than member: keys from member's JWKS
    /// (`settings.jwks_url`), revoked tokens from the blacklist under the Redis key prefix
    /// (mirrored locally unless `AUTH_BLACKLIST_MIRROR=false`; call within a Tokio runtime).
    pub fn over_http(
        settings: AuthSettings,
        redis: deadpool_redis::Pool,
        redis_settings: &RedisSettings,
    ) -> anyhow::Result<Self> {
        let prefix = &redis_settings.key_prefix;
        let blacklist = if settings.blacklist_mirror {
            Blacklist::mirrored(redis, prefix, &redis_settings.url)?
        } else {
            Blacklist::new(redis, prefix)
        };
        Ok(Self::new(
            HttpJwks::new(settings.jwks_url.clone())?,
            settings,
            Some(blacklist),
        ))
    }

    pub fn new(
        source: impl JwksSource,
        settings: AuthSettings,
        blacklist: Option<Blacklist>,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = settings.leeway;
        validation.validate_aud = false;
        let settings_entries = settings.verified_cache_entries;
        Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                settings,
                cache: RwLock::new(Cache::default()),
                fetching: Mutex::new(None),
                validation,
                blacklist,
                verified: (settings_entries > 0)
                    .then(|| quick_cache::sync::Cache::new(settings_entries)),
            }),
        }
    }

    /// Checks `token` completely: algorithm, key, signature, expiry, type, blacklist. A token
    /// checked before skips the signature (remembered), never the expiry, key or blacklist.
    pub async fn verify(&self, token: &str) -> Result<Authenticated, AuthError> {
        let (verified, key) = match self.remembered(token) {
            Some(verified) => {
                let now = now_seconds();
                let leeway = i64::try_from(self.inner.settings.leeway).unwrap_or(0);
                if verified.expires_at < now - leeway {
                    return Err(AuthError::Expired);
                }
                // Keys rotate: a remembered token is only as good as its key.
                let key = self.known_key(&verified.kid).await?;
                (verified, key)
            }
            // Expiry checked with the signature.
            None => self.check_signature(token).await?,
        };
        self.check_revoked(&verified).await?;
        Ok(Authenticated {
            member_id: verified.member_id,
            role: verified.role,
            jti: verified.jti.clone(),
            expires_at: verified.expires_at,
            refresh_needed: key.retired,
        })
    }

    fn remembered(&self, token: &str) -> Option<Arc<Verified>> {
        let cache = self.inner.verified.as_ref()?;
        let hit = cache.get(&token_digest(token));
        metrics::counter!("auth_verified_cache_total", "outcome" => if hit.is_some() { "hit" } else { "miss" })
            .increment(1);
        hit
    }

    /// Algorithm, key, signature, claims and type; remembers the token when all hold.
    async fn check_signature(&self, token: &str) -> Result<(Arc<Verified>, Arc<Key>), AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("the access token is malformed".into()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the access token names no key (kid)".into()))?;
        let key = self.known_key(&kid).await?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.inner.validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::Json(_) => AuthError::Invalid(
                        "the access token's claims are not an access token's".into(),
                    ),
                    _ => AuthError::Invalid(
                        "the access token's signature or claims are invalid".into(),
                    ),
                })?;
        let claims = data.claims;
        self.check_lifetime(claims.iat, claims.exp)?;
        let member_id = claims.member_id().ok_or_else(|| {
            AuthError::Invalid("the access token's subject is not a member".into())
        })?;
        let verified = Arc::new(Verified {
            member_id,
            role: claims.role,
            jti: claims.jti,
            expires_at: claims.exp,
            epoch: claims.epoch,
            kid,
        });
        if let Some(cache) = &self.inner.verified {
            cache.insert(token_digest(token), Arc::clone(&verified));
        }
        Ok((verified, key))
    }

    /// Issued in the past (give or take the leeway) and for no longer than the maximum.
    fn check_lifetime(&self, iat: i64, exp: i64) -> Result<(), AuthError> {
        let leeway = i64::try_from(self.inner.settings.leeway).unwrap_or(0);
        let max = i64::try_from(self.inner.settings.max_lifetime.as_secs()).unwrap_or(i64::MAX);
        if iat > now_seconds().saturating_add(leeway) {
            return Err(AuthError::Invalid(
                "the access token was issued in the future".into(),
            ));
        }
        if exp.saturating_sub(iat) > max {
            return Err(AuthError::Invalid(format!(
                "the access token lives longer than {max} s"
            )));
        }
        Ok(())
    }

    /// Logged out (its `jti`), or issued before a member-wide revocation (its `epoch`).
    async fn check_revoked(&self, token: &Verified) -> Result<(), AuthError> {
        if let Some(blacklist) = &self.inner.blacklist {
            match blacklist
                .revoked(&token.jti, token.member_id, token.epoch)
                .await
            {
                Ok(true) => return Err(AuthError::Revoked),
                Ok(false) => {}
                Err(e) if self.inner.settings.blacklist_fail_open => {
                    metrics::counter!("auth_blacklist_unchecked_total").increment(1);
                    tracing::warn!(error = %e, "blacklist unavailable: token accepted (fail open)");
                }
                // Fail closed: a revoked token must not pass because Redis is down.
                Err(e) => return Err(AuthError::Unavailable(format!("blacklist: {e}"))),
            }
        }
        Ok(())
    }

    /// The key `kid`, or the token is invalid for naming a key the issuer does not publish.
    async fn known_key(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
        self.key(kid)
            .await?
            .ok_or_else(|| AuthError::Invalid("the access token's key is unknown".into()))
    }

    /// The key `kid`, refreshing the cache when it is stale or does not know `kid`.
    async fn key(&self, kid: &str) -> Result<Option<Arc<Key>>, AuthError> {
        {
            let cache = self.inner.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.inner.settings.cache_ttl);
            if let Some(key) = cache.keys.get(kid)
                && fresh
            {
                return Ok(Some(Arc::clone(key)));
            }
        }
        self.refresh().await?;
        Ok(self.inner.cache.read().await.keys.get(kid).cloned())
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let mut last_attempt = self.inner.fetching.lock().await;
        // Another caller refreshed while we waited, or we refetched too recently.
        if last_attempt.is_some_and(|at| at.elapsed() < self.inner.settings.min_refetch) {
            return Ok(());
        }
        *last_attempt = Some(Instant::now());
        match self.inner.source.fetch().await {
            Ok(set) => {
                let mut keys = HashMap::new();
                for jwk in set.keys {
                    if jwk.alg != "EdDSA" || jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                        continue;
                    }
                    match DecodingKey::from_ed_components(&jwk.x) {
                        Ok(decoding) => {
                            keys.insert(
                                jwk.kid,
                                Arc::new(Key {
                                    decoding,
                                    retired: jwk.status == KeyStatus::Retired,
                                }),
                            );
                        }
                        Err(e) => tracing::warn!(kid = jwk.kid, error = %e, "unusable JWK"),
                    }
                }
                let mut cache = self.inner.cache.write().await;
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
                metrics::counter!("auth_jwks_fetches_total", "outcome" => "ok").increment(1);
                Ok(())
            }
            Err(e) => {
                metrics::counter!("auth_jwks_fetches_total", "outcome" => "error").increment(1);
                let cache = self.inner.cache.read().await;
                if cache.keys.is_empty() {
                    Err(AuthError::Unavailable(format!("cannot fetch JWKS: {e:#}")))
                } else {
                    // Keep verifying with the keys we have; member may be briefly down.
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "JWKS refresh failed; using cached keys"
                    );
                    Ok(())
                }
            }
        }
    }
}
