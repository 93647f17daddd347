//! Logging in with Google (OpenID Connect) and Kakao (OAuth 2.0): authorization code flow
//! with PKCE (S256) and a single-use `state` bound to the browser that started the flow, plus
//! a `nonce` checked in Google's ID token, whose signing keys are cached ([`KeyCache`]).
//! Every endpoint comes from the environment with the real providers' URLs as defaults, so
//! tests run the same flow against a local OAuth server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use service_runtime::config::{string_or, url_or};
use service_runtime::{ConfigError, EnvSource};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Google,
    Kakao,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "google" => Some(Provider::Google),
            "kakao" => Some(Provider::Kakao),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Kakao => "kakao",
        }
    }

    /// OpenID Connect: the login ends with an ID token (nonce, signature, issuer, audience).
    pub fn is_oidc(self) -> bool {
        matches!(self, Provider::Google)
    }

    fn env_prefix(self) -> &'static str {
        match self {
            Provider::Google => "GOOGLE",
            Provider::Kakao => "KAKAO",
        }
    }
}

/// One provider's endpoints and credentials.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: SecretString,
    pub auth_url: url::Url,
    pub token_url: url::Url,
    pub userinfo_url: url::Url,
    /// OIDC only (Google): where the ID token's signing keys are, and who issues it.
    pub jwks_url: Option<url::Url>,
    pub issuer: Option<String>,
    pub redirect_url: url::Url,
    pub scopes: Vec<String>,
}

impl ProviderSettings {
    /// `{GOOGLE,KAKAO}_CLIENT_ID`, `_CLIENT_SECRET`, `_AUTH_URL`, `_TOKEN_URL`,
    /// `_USERINFO_URL`, `_REDIRECT_URL`, `_SCOPES`, and for Google `_JWKS_URL`, `_ISSUER`.
    /// `None` when no client id is set: the provider is off.
    pub fn from_env(
        env: &dyn EnvSource,
        provider: Provider,
        public_url: &url::Url,
    ) -> Result<Option<Self>, ConfigError> {
        let p = provider.env_prefix();
        let client_id = string_or(env, &format!("{p}_CLIENT_ID"), "");
        if client_id.trim().is_empty() {
            return Ok(None);
        }
        let https = &["http", "https"];
        let (auth, token, userinfo, jwks, issuer, scopes) = match provider {
            Provider::Google => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://openidconnect.googleapis.com/v1/userinfo",
                Some("https://www.googleapis.com/oauth2/v3/certs"),
                Some("https://accounts.google.com"),
                "openid email profile",
            ),
            Provider::Kakao => (
                "https://kauth.kakao.com/oauth/authorize",
                "https://kauth.kakao.com/oauth/token",
                "https://kapi.kakao.com/v2/user/me",
                None,
                None,
                "account_email profile_nickname",
            ),
        };
        let callback = public_url
            .join(&format!(
                "/api/v1/auth/oauth/{}/callback",
                provider.as_str()
            ))
            .map_err(|e| ConfigError::new("MEMBER_PUBLIC_URL", public_url.as_str(), e))?;
        Ok(Some(Self {
            provider,
            client_id,
            client_secret: SecretString::from(string_or(env, &format!("{p}_CLIENT_SECRET"), "")),
            auth_url: url_or(env, &format!("{p}_AUTH_URL"), auth, https)?,
            token_url: url_or(env, &format!("{p}_TOKEN_URL"), token, https)?,
            userinfo_url: url_or(env, &format!("{p}_USERINFO_URL"), userinfo, https)?,
            jwks_url: jwks
                .map(|d| url_or(env, &format!("{p}_JWKS_URL"), d, https))
                .transpose()?,
            issuer: issuer.map(|d| string_or(env, &format!("{p}_ISSUER"), d)),
            redirect_url: url_or(env, &format!("{p}_REDIRECT_URL"), callback.as_str(), https)?,
            scopes: string_or(env, &format!("{p}_SCOPES"), scopes)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        }))
    }
}

/// The ID token, when the provider sends one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;
type ProviderClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What is kept between the redirect and the callback (in Redis, under the state). The PKCE
/// verifier and the nonce never leave the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub provider: Provider,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Set when a logged-in member is linking this provider to their account.
    pub link_member: Option<i64>,
    /// SHA-256 (hex) of the browser binding: the random value in the flow cookie set on the
    /// browser that started the flow. Only that browser can finish it.
    pub browser: String,
}

/// A new browser binding: the value for the flow cookie and the hash kept with the state.
pub fn new_browser_binding() -> (String, String) {
    let raw: [u8; 32] = rand::random();
    let value = URL_SAFE_NO_PAD.encode(raw);
    let hash = binding_hash(&value);
    (value, hash)
}

fn binding_hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the flow cookie's value is the binding stored with the state. Compares the hashes
/// in constant time (no early exit), so timing tells nothing about how much matched.
pub fn browser_matches(cookie_value: &str, stored_hash: &str) -> bool {
    let presented = binding_hash(cookie_value);
    let (a, b) = (presented.as_bytes(), stored_hash.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Who the provider says logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Why a callback could not establish who logged in. The text is for logs only: it can name
/// internal URLs and library errors, so handlers answer clients with a fixed message.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the provider refused the authorization code: {0}")]
    Exchange(String),
    #[error("the provider's identity could not be verified: {0}")]
    Identity(String),
    /// The provider (token endpoint, key set, user info) could not be reached.
    #[error("the provider is unreachable: {0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

#[derive(Deserialize)]
struct KakaoUser {
    id: i64,
    #[serde(default)]
    kakao_account: Option<KakaoAccount>,
}

#[derive(Deserialize)]
struct KakaoAccount {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    is_email_verified: Option<bool>,
    /// Kakao marks an address invalid once another Kakao account took it over; such an
    /// address proves nothing even if it was verified once.
    #[serde(default)]
    is_email_valid: Option<bool>,
    #[serde(default)]
    profile: Option<KakaoProfile>,
}

#[derive(Deserialize)]
struct KakaoProfile {
    #[serde(default)]
    nickname: Option<String>,
}

/// How long a provider's key set is used before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(600);
/// An ID token naming a key the cached set does not have refetches at most this often, so
/// forged `kid`s cannot make member hammer the provider.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// The providers this member service is configured for.
#[derive(Clone)]
pub struct OAuthProviders {
    providers: HashMap<Provider, ProviderSettings>,
    http: reqwest::Client,
    /// The ID-token signing keys of each OIDC provider, shared by all requests.
    keys: HashMap<Provider, Arc<KeyCache>>,
}

impl OAuthProviders {
    pub fn new(settings: Vec<ProviderSettings>) -> anyhow::Result<Self> {
        service_runtime::tls::install_crypto_provider();
        // Never follow redirects from a token endpoint (SSRF hardening).
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let keys = settings
            .iter()
            .filter_map(|s| {
                let url = s.jwks_url.clone()?;
                let source = HttpKeySource {
                    http: http.clone(),
                    url,
                    provider: s.provider,
                };
                Some((
                    s.provider,
                    Arc::new(KeyCache::new(source, JWKS_TTL, JWKS_MIN_REFETCH)),
                ))
            })
            .collect();
        Ok(Self {
            providers: settings.into_iter().map(|s| (s.provider, s)).collect(),
            http,
            keys,
        })
    }

    pub fn get(&self, provider: Provider) -> Option<&ProviderSettings> {
        self.providers.get(&provider)
    }

    fn client(settings: &ProviderSettings) -> anyhow::Result<ProviderClient> {
        let mut client = oauth2::Client::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(settings.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(settings.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(settings.redirect_url.clone()));
        let secret = settings.client_secret.expose_secret();
        if !secret.is_empty() {
            client = client.set_client_secret(ClientSecret::new(secret.to_owned()));
        }
        Ok(client)
    }

    /// The provider's authorization URL, the state to store, and what to store under it.
    /// `browser` is the hash of the binding put in the starting browser's flow cookie.
    pub fn authorize(
        &self,
        settings: &ProviderSettings,
        link_member: Option<i64>,
        browser: String,
    ) -> anyhow::Result<(url::Url, String, PendingAuthorization)> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let client = Self::client(settings)?;
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_scopes(settings.scopes.iter().cloned().map(Scope::new));
        // Every OpenID Connect login sends a nonce; the ID token must echo it.
        if settings.provider.is_oidc() {
            request = request.add_extra_param("nonce", nonce.clone());
        }
        let (url, state) = request.url();
        Ok((
            url,
            state.secret().clone(),
            PendingAuthorization {
                provider: settings.provider,
                pkce_verifier: verifier.secret().clone(),
                nonce,
                link_member,
                browser,
            },
        ))
    }

    /// Exchanges the code and finds out who logged in.
    pub async fn identify(
        &self,
        settings: &ProviderSettings,
        code: &str,
        pending: &PendingAuthorization,
    ) -> Result<ProviderIdentity, OAuthError> {
        let client = Self::client(settings).map_err(|e| OAuthError::Exchange(e.to_string()))?;
        let http = self.http.clone();
        let send = move |request: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send(&http, request).await }
        };
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&send)
            .await
            .map_err(|e| match &e {
                oauth2::RequestTokenError::Request(_) => OAuthError::Unavailable(describe(&e)),
                _ => OAuthError::Exchange(describe(&e)),
            })?;
        match settings.provider {
            Provider::Google => self.google_identity(settings, &token, &pending.nonce).await,
            Provider::Kakao => self.kakao_identity(settings, &token).await,
        }
    }

    async fn google_identity(
        &self,
        settings: &ProviderSettings,
        token: &TokenAnswer,
        nonce: &str,
    ) -> Result<ProviderIdentity, OAuthError> {
        let id_token = token
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| OAuthError::Identity("no ID token in the token response".into()))?;
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| OAuthError::Identity(format!("malformed ID token: {e}")))?;
        // Only the asymmetric algorithms a provider uses; never HS* or none.
        if !matches!(
            header.alg,
            jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::ES256
        ) {
            return Err(OAuthError::Identity(format!(
                "ID token algorithm {:?} refused",
                header.alg
            )));
        }
        let issuer = settings
            .issuer
            .as_deref()
            .ok_or_else(|| OAuthError::Identity("no issuer configured".into()))?;
        let keys = self
            .keys
            .get(&settings.provider)
            .ok_or_else(|| OAuthError::Identity("no JWKS URL configured".into()))?;
        let jwk = keys.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OAuthError::Identity(format!("unusable provider key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[settings.client_id.as_str()]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
            .map_err(|e| OAuthError::Identity(format!("ID token rejected: {e}")))?
            .claims;
        // The nonce ties the ID token to the flow (and so the browser) that asked for it: a
        // token minted for another login, or without a nonce, is refused.
        match claims.nonce.as_deref() {
            Some(echoed) if !nonce.is_empty() && echoed == nonce => {}
            Some(_) => {
                return Err(OAuthError::Identity(
                    "the ID token's nonce does not match".into(),
                ));
            }
            None => return Err(OAuthError::Identity("the ID token has no nonce".into())),
        }
        Ok(ProviderIdentity {
            subject: claims.sub,
            email_verified: claims.email.is_some() && claims.email_verified.unwrap_or(false),
            email: claims.email,
            name: claims.name,
        })
    }

    async fn kakao_identity(
        &self,
        settings: &ProviderSettings,
        token: &TokenAnswer,
    ) -> Result<ProviderIdentity, OAuthError> {
        let response = self
            .http
            .get(settings.userinfo_url.clone())
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(format!("user info request failed: {e}")))?
            .error_for_status()
            .map_err(|e| OAuthError::Identity(format!("user info refused: {e}")))?;
        let user: KakaoUser = response
            .json()
            .await
            .map_err(|e| OAuthError::Identity(format!("unexpected user info: {e}")))?;
        Ok(kakao_identity(user))
    }
}

/// Who Kakao says logged in. Its email counts as verified only when Kakao says it is both
/// verified and still valid (`is_email_valid` is false once another Kakao account claimed
/// the address); anything else is an unverified email, which never links to an account.
fn kakao_identity(user: KakaoUser) -> ProviderIdentity {
    let account = user.kakao_account;
    let email = account.as_ref().and_then(|a| a.email.clone());
    let verified = account
        .as_ref()
        .is_some_and(|a| a.is_email_verified == Some(true) && a.is_email_valid != Some(false));
    ProviderIdentity {
        subject: user.id.to_string(),
        email_verified: email.is_some() && verified,
        email,
        name: account.and_then(|a| a.profile).and_then(|p| p.nickname),
    }
}

/// Where a [`KeyCache`] gets a provider's key set from.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn fetch(&self) -> Result<JwkSet, OAuthError>;
}

/// The provider's JWKS endpoint.
struct HttpKeySource {
    http: reqwest::Client,
    url: url::Url,
    provider: Provider,
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<JwkSet, OAuthError> {
        let result = async {
            self.http
                .get(self.url.clone())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| OAuthError::Unavailable(format!("cannot fetch the keys: {e}")))?
                .json::<JwkSet>()
                .await
                .map_err(|e| OAuthError::Unavailable(format!("bad provider JWKS: {e}")))
        }
        .await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("member_oauth_jwks_fetches_total",
            "provider" => self.provider.as_str(), "outcome" => outcome)
        .increment(1);
        result
    }
}

#[derive(Default)]
struct CachedKeys {
    set: Option<Arc<JwkSet>>,
    fetched_at: Option<Instant>,
}

/// A provider's ID-token signing keys, kept in memory: used for `ttl`, then refetched; an
/// ID token naming a key the set does not have (the provider rotated) refetches at once, but
/// never more than once per `min_refetch`. When a refetch fails the keys already held keep
/// working. Fetches are serialised, so many callbacks at once cause one fetch.
pub struct KeyCache {
    source: Box<dyn KeySource>,
    ttl: Duration,
    min_refetch: Duration,
    cache: RwLock<CachedKeys>,
    /// Serialises fetches; holds when the last one was attempted.
    last_attempt: Mutex<Option<Instant>>,
}

impl KeyCache {
    pub fn new(source: impl KeySource, ttl: Duration, min_refetch: Duration) -> Self {
        Self {
            source: Box::new(source),
            ttl,
            min_refetch,
            cache: RwLock::new(CachedKeys::default()),
            last_attempt: Mutex::new(None),
        }
    }

    fn pick(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
        match kid {
            Some(kid) => set.find(kid),
            None => set.keys.first(),
        }
        .cloned()
    }

    /// The key an ID token names (`kid`; the first key when it names none).
    pub async fn key(&self, kid: Option<&str>) -> Result<Jwk, OAuthError> {
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched_at.is_some_and(|at| at.elapsed() < self.ttl);
            if fresh && let Some(jwk) = cache.set.as_deref().and_then(|s| Self::pick(s, kid)) {
                return Ok(jwk);
            }
        }
        self.refresh().await?;
        let cache = self.cache.read().await;
        let set = cache.set.as_deref().ok_or_else(|| {
            OAuthError::Unavailable("the provider's keys could not be fetched".into())
        })?;
        Self::pick(set, kid).ok_or_else(|| {
            OAuthError::Identity("the ID token's key is not in the provider's JWKS".into())
        })
    }

    async fn refresh(&self) -> Result<(), OAuthError> {
        let mut last_attempt = self.last_attempt.lock().await;
        // Another caller fetched while we waited, or we fetched too recently.
        if last_attempt.is_some_and(|at| at.elapsed() < self.min_refetch) {
            return Ok(());
        }
        *last_attempt = Some(Instant::now());
        match self.source.fetch().await {
            Ok(set) => {
                let mut cache = self.cache.write().await;
                cache.set = Some(Arc::new(set));
                cache.fetched_at = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                if self.cache.read().await.set.is_none() {
                    return Err(e);
                }
                // Keep verifying with the keys we have; the provider may be briefly down.
                tracing::warn!(error = %e, "provider JWKS refresh failed; using cached keys");
                Ok(())
            }
        }
    }
}

fn describe<E: std::error::Error>(err: &E) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// oauth2's HTTP requests through our reqwest client.
async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut answer = http::Response::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A key set with the given key ids, counting how often it is fetched.
    struct Counted {
        kids: std::sync::Mutex<Vec<&'static str>>,
        fetches: Arc<AtomicUsize>,
        fail: bool,
    }

    #[async_trait]
    impl KeySource for Counted {
        async fn fetch(&self) -> Result<JwkSet, OAuthError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(OAuthError::Unavailable("down".into()));
            }
            let kids = self.kids.lock().map(|k| k.clone()).unwrap_or_default();
            let keys: Vec<_> = kids
                .iter()
                .map(|kid| serde_json::json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": "sXch", "e": "AQAB"}))
                .collect();
            serde_json::from_value(serde_json::json!({ "keys": keys }))
                .map_err(|e| OAuthError::Identity(e.to_string()))
        }
    }

    fn cache(
        kids: &[&'static str],
        ttl: Duration,
        min_refetch: Duration,
    ) -> (KeyCache, Arc<AtomicUsize>) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let source = Counted {
            kids: std::sync::Mutex::new(kids.to_vec()),
            fetches: Arc::clone(&fetches),
            fail: false,
        };
        (KeyCache::new(source, ttl, min_refetch), fetches)
    }

    #[tokio::test]
    async fn many_lookups_of_a_known_key_fetch_once() {
        let (keys, fetches) = cache(&["a", "b"], JWKS_TTL, JWKS_MIN_REFETCH);
        for _ in 0..20 {
            assert!(keys.key(Some("a")).await.is_ok());
            assert!(keys.key(Some("b")).await.is_ok());
        }
        let keys = Arc::new(keys);
        let lookups: Vec<_> = (0..8)
            .map(|_| {
                let keys = Arc::clone(&keys);
                tokio::spawn(async move { keys.key(Some("a")).await.is_ok() })
            })
            .collect();
        for lookup in lookups {
            assert!(matches!(lookup.await, Ok(true)));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unknown_kids_refetch_at_most_once_per_interval() {
        let (keys, fetches) = cache(&["a"], JWKS_TTL, JWKS_MIN_REFETCH);
        assert!(keys.key(Some("a")).await.is_ok());
        for _ in 0..10 {
            assert!(matches!(
                keys.key(Some("forged")).await,
                Err(OAuthError::Identity(_))
            ));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "throttled");

        // Without the interval, an unknown kid refetches (a rotated key is found at once).
        let (keys, fetches) = cache(&["a"], JWKS_TTL, Duration::ZERO);
        assert!(keys.key(Some("a")).await.is_ok());
        assert!(keys.key(Some("rotated")).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_stale_set_is_refetched_and_kept_when_the_provider_is_down() {
        let (keys, fetches) = cache(&["a"], Duration::ZERO, Duration::ZERO);
        assert!(keys.key(Some("a")).await.is_ok());
        assert!(keys.key(Some("a")).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "expired: refetched");

        let fetches = Arc::new(AtomicUsize::new(0));
        let down = KeyCache::new(
            Counted {
                kids: std::sync::Mutex::new(vec!["a"]),
                fetches: Arc::clone(&fetches),
                fail: true,
            },
            JWKS_TTL,
            Duration::ZERO,
        );
        assert!(matches!(
            down.key(Some("a")).await,
            Err(OAuthError::Unavailable(_))
        ));
        // Seeded, then the provider goes down: the held keys keep working.
        *down.cache.write().await = CachedKeys {
            set: serde_json::from_value(serde_json::json!({"keys": [
                {"kty": "RSA", "kid": "a", "alg": "RS256", "n": "sXch", "e": "AQAB"}
            ]}))
            .ok()
            .map(Arc::new),
            fetched_at: None,
        };
        assert!(down.key(Some("a")).await.is_ok());
    }

    #[test]
    fn a_binding_matches_only_its_own_cookie() {
        let (value, hash) = new_browser_binding();
        let (other, other_hash) = new_browser_binding();
        assert_ne!(value, other);
        assert!(browser_matches(&value, &hash));
        assert!(!browser_matches(&other, &hash));
        assert!(!browser_matches(&value, &other_hash));
        assert!(!browser_matches("", &hash));
        assert!(!browser_matches(&value, ""));
        assert!(
            !browser_matches(&hash, &hash),
            "the stored hash is not a cookie"
        );
        assert_eq!(value.len(), 43, "256 random bits");
    }

    fn kakao(account: serde_json::Value) -> ProviderIdentity {
        let user: KakaoUser =
            serde_json::from_value(serde_json::json!({"id": 7, "kakao_account": account}))
                .unwrap_or(KakaoUser {
                    id: 0,
                    kakao_account: None,
                });
        kakao_identity(user)
    }

    #[test]
    fn a_kakao_email_is_verified_only_when_verified_and_valid() {
        let email = "ann@example.com";
        let yes = kakao(
            serde_json::json!({"email": email, "is_email_verified": true, "is_email_valid": true}),
        );
        assert!(yes.email_verified);
        assert_eq!(yes.subject, "7");
        let absent_validity = kakao(serde_json::json!({"email": email, "is_email_verified": true}));
        assert!(absent_validity.email_verified);
        for account in [
            serde_json::json!({"email": email, "is_email_verified": true, "is_email_valid": false}),
            serde_json::json!({"email": email, "is_email_verified": false, "is_email_valid": true}),
            serde_json::json!({"email": email}),
            serde_json::json!({"is_email_verified": true, "is_email_valid": true}),
        ] {
            assert!(!kakao(account.clone()).email_verified, "{account}");
        }
    }
}
