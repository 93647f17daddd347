//! Logging in with Google (OpenID Connect) and Kakao (OAuth 2.0): authorization code flow
//! with PKCE (S256) and a single-use `state`, plus a `nonce` checked in Google's ID token.
//! Every endpoint comes from the environment with the real providers' URLs as defaults, so
//! tests run the same flow against a local OAuth server.

use std::collections::HashMap;
use std::time::Duration;

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

/// What is kept between the redirect and the callback (in Redis, under the state).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub provider: Provider,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Set when a logged-in member is linking this provider to their account.
    pub link_member: Option<i64>,
}

/// Who the provider says logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the provider refused the authorization code: {0}")]
    Exchange(String),
    #[error("the provider's identity could not be verified: {0}")]
    Identity(String),
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
    #[serde(default)]
    profile: Option<KakaoProfile>,
}

#[derive(Deserialize)]
struct KakaoProfile {
    #[serde(default)]
    nickname: Option<String>,
}

/// The providers this member service is configured for.
#[derive(Clone)]
pub struct OAuthProviders {
    providers: HashMap<Provider, ProviderSettings>,
    http: reqwest::Client,
}

impl OAuthProviders {
    pub fn new(settings: Vec<ProviderSettings>) -> anyhow::Result<Self> {
        service_runtime::tls::install_crypto_provider();
        Ok(Self {
            providers: settings.into_iter().map(|s| (s.provider, s)).collect(),
            // Never follow redirects from a token endpoint (SSRF hardening).
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
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
    pub fn authorize(
        &self,
        settings: &ProviderSettings,
        link_member: Option<i64>,
    ) -> anyhow::Result<(url::Url, String, PendingAuthorization)> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random().secret().clone();
        let client = Self::client(settings)?;
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_scopes(settings.scopes.iter().cloned().map(Scope::new));
        if settings.issuer.is_some() {
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
            .map_err(|e| OAuthError::Exchange(describe(&e)))?;
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
        let jwks_url = settings
            .jwks_url
            .clone()
            .ok_or_else(|| OAuthError::Identity("no JWKS URL configured".into()))?;
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| OAuthError::Identity(format!("cannot fetch the provider's keys: {e}")))?
            .json()
            .await
            .map_err(|e| OAuthError::Identity(format!("bad provider JWKS: {e}")))?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None => jwks.keys.first(),
        }
        .ok_or_else(|| {
            OAuthError::Identity("the ID token's key is not in the provider's JWKS".into())
        })?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| OAuthError::Identity(format!("unusable provider key: {e}")))?;
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
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[settings.client_id.as_str()]);
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer.as_str()]);
        }
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
            .map_err(|e| OAuthError::Identity(format!("ID token rejected: {e}")))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(OAuthError::Identity(
                "the ID token's nonce does not match".into(),
            ));
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
        let user: KakaoUser = self
            .http
            .get(settings.userinfo_url.clone())
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| OAuthError::Identity(format!("user info request failed: {e}")))?
            .json()
            .await
            .map_err(|e| OAuthError::Identity(format!("unexpected user info: {e}")))?;
        let account = user.kakao_account;
        let email = account.as_ref().and_then(|a| a.email.clone());
        Ok(ProviderIdentity {
            subject: user.id.to_string(),
            email_verified: email.is_some()
                && account
                    .as_ref()
                    .and_then(|a| a.is_email_verified)
                    .unwrap_or(false),
            email,
            name: account.and_then(|a| a.profile).and_then(|p| p.nickname),
        })
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
