//! [`ResilientClient`]: one downstream, one breaker, one rate limiter, and the retry loop
//! that ties them together.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contracts::headers::{IDEMPOTENCY_KEY, TRACEPARENT, TRACESTATE};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Request, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use tracing::Instrument;
use url::Url;

use crate::breaker::{BreakerState, CircuitBreaker, Outcome};
use crate::error::{BuildError, CallError};
use crate::limiter::RateLimiter;
use crate::observe;
use crate::settings::ClientSettings;

/// An HTTP client for one named downstream service. Cheap to clone; clones share the
/// breaker and the rate limiter, so build one per downstream per process.
#[derive(Clone)]
pub struct ResilientClient {
    inner: Arc<Inner>,
    /// Who this service is to the downstream: the `Authorization` of every attempt.
    credentials: Option<Arc<dyn CallCredentials>>,
}

impl std::fmt::Debug for ResilientClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientClient")
            .field("inner", &self.inner)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

/// The caller's identity for a downstream: the `Authorization` header value each attempt
/// carries (e.g. `Bearer <service token>` minted for that downstream, see auth's
/// `ServiceIdentity`). Asked per attempt, so a retry never sends an expired token.
pub trait CallCredentials: Send + Sync + 'static {
    /// The `Authorization` value for a call to `downstream` (the client's downstream name).
    fn authorization(&self, downstream: &str) -> Result<String, String>;
}

#[derive(Debug)]
struct Inner {
    downstream: String,
    base_url: Url,
    settings: ClientSettings,
    http: reqwest::Client,
    breaker: CircuitBreaker,
    limiter: RateLimiter,
}

impl ResilientClient {
    /// A client for `downstream` (the name in metrics, logs and errors, e.g. `member`)
    /// at `base_url`; request paths are resolved under it.
    pub fn new(
        downstream: &str,
        base_url: Url,
        settings: ClientSettings,
    ) -> Result<Self, BuildError> {
        let mut base_url = base_url;
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(BuildError::BaseUrl {
                downstream: downstream.to_owned(),
                url: base_url.to_string(),
            });
        }
        // `join` replaces the last segment of a base without a trailing slash.
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let invalid = |reason: String| BuildError::Settings {
            downstream: downstream.to_owned(),
            reason,
        };
        settings.validate().map_err(invalid)?;
        let limiter = RateLimiter::new(&settings.rate_limit).map_err(invalid)?;
        service_runtime::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|source| BuildError::Http {
                downstream: downstream.to_owned(),
                source,
            })?;
        let breaker = CircuitBreaker::new(downstream, settings.breaker.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                downstream: downstream.to_owned(),
                base_url,
                settings,
                http,
                breaker,
                limiter,
            }),
            credentials: None,
        })
    }

    /// This client (and clones made from it afterwards) authenticates every attempt with
    /// `credentials`, asked for the downstream's name.
    pub fn with_credentials(mut self, credentials: Arc<dyn CallCredentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn downstream(&self) -> &str {
        &self.inner.downstream
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.inner.settings
    }

    /// The breaker's state now (an elapsed open wait already counts as half-open).
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// A call to `path` (relative to the base URL; a leading `/` is fine). Add headers or a
    /// body, then `.await` it (or `.send().await`).
    pub fn request(&self, method: Method, path: &str) -> Call {
        let builder = self
            .url(path)
            .map(|url| self.inner.http.request(method, url));
        Call {
            client: self.clone(),
            builder,
        }
    }

    pub fn get(&self, path: &str) -> Call {
        self.request(Method::GET, path)
    }

    /// Not retried unless it carries an `Idempotency-Key` (see [`Call::idempotency_key`]).
    pub fn post(&self, path: &str) -> Call {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call {
        self.request(Method::PUT, path)
    }

    /// Not retried unless it carries an `Idempotency-Key` (see [`Call::idempotency_key`]).
    pub fn patch(&self, path: &str) -> Call {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.request(Method::DELETE, path)
    }

    /// Sends a prepared request through the breaker, the rate limiter and the retry loop.
    /// The request's own timeout is replaced by this client's.
    pub async fn execute(&self, request: Request) -> Result<Response, CallError> {
        let span = tracing::info_span!(
            "downstream_call",
            otel.kind = "client",
            downstream = %self.inner.downstream,
            http.request.method = %request.method(),
            url.path = %request.url().path(),
            attempts = tracing::field::Empty,
        );
        self.run(request).instrument(span).await
    }

    async fn run(&self, mut request: Request) -> Result<Response, CallError> {
        propagate_trace_context(&mut request);
        let settings = &self.inner.settings;
        let max_attempts = if may_retry(&request) {
            settings.retry.max_attempts.max(1)
        } else {
            1
        };
        let deadline = Instant::now() + settings.deadline;
        let mut attempt = 1;
        loop {
            tracing::Span::current().record("attempts", attempt);
            // A streaming body cannot be cloned: such a request gets one attempt.
            let spare = (attempt < max_attempts)
                .then(|| request.try_clone())
                .flatten();
            let timeout = settings
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let failure = match self.attempt(request, timeout).await {
                Ok(response) => return Ok(response),
                Err(AttemptError::Final(error)) => return Err(error),
                Err(AttemptError::Failed(failure)) => failure,
            };
            let retriable = failure.is_retriable();
            let error = failure.into_error(&self.inner.downstream, attempt, timeout);
            let Some(next) = spare.filter(|_| retriable) else {
                return Err(error);
            };
            let wait = settings.retry.backoff(attempt, rand::random::<f64>());
            if Instant::now() + wait >= deadline {
                tracing::debug!(attempt, %error, "no time left to retry");
                return Err(error);
            }
            observe::call(&self.inner.downstream, observe::OUTCOME_RETRIED);
            tracing::debug!(
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                %error,
                "retrying"
            );
            tokio::time::sleep(wait).await;
            request = next;
            attempt += 1;
        }
    }

    /// One attempt: breaker permit, rate-limit permit, the exchange, and its verdict.
    async fn attempt(
        &self,
        mut request: Request,
        timeout: Duration,
    ) -> Result<Response, AttemptError> {
        let downstream = self.inner.downstream.as_str();
        let permit = match self.inner.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(retry_after) => {
                observe::call(downstream, observe::OUTCOME_REJECTED_OPEN);
                return Err(AttemptError::Final(CallError::CircuitOpen {
                    downstream: downstream.to_owned(),
                    retry_after,
                }));
            }
        };
        if !self.inner.limiter.acquire().await {
            // Dropping the permit unrecorded gives a half-open probe slot back.
            drop(permit);
            observe::call(downstream, observe::OUTCOME_REJECTED_RATE_LIMIT);
            return Err(AttemptError::Final(CallError::RateLimited {
                downstream: downstream.to_owned(),
            }));
        }
        if let Some(credentials) = &self.credentials {
            let authorization = credentials
                .authorization(downstream)
                .and_then(|v| HeaderValue::from_str(&v).map_err(|e| e.to_string()));
            match authorization {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request
                        .headers_mut()
                        .insert(reqwest::header::AUTHORIZATION, value);
                }
                Err(reason) => {
                    drop(permit);
                    return Err(AttemptError::Final(CallError::InvalidRequest {
                        downstream: downstream.to_owned(),
                        reason: format!("no credentials: {reason}"),
                    }));
                }
            }
        }
        *request.timeout_mut() = Some(timeout);
        let started = Instant::now();
        let result = self.inner.http.execute(request).await;
        let took = started.elapsed();
        let verdict = match result {
            Ok(response) if response.status().is_server_error() => {
                Err(Failure::Status(response.status()))
            }
            Ok(response) => Ok(response),
            Err(err) if err.is_builder() => {
                drop(permit);
                return Err(AttemptError::Final(CallError::InvalidRequest {
                    downstream: downstream.to_owned(),
                    reason: err.to_string(),
                }));
            }
            Err(err) if err.is_connect() => Err(Failure::Connect(err)),
            Err(err) if err.is_timeout() => Err(Failure::Timeout),
            Err(err) => Err(Failure::Transport(err)),
        };
        let slow = took >= self.inner.settings.breaker.slow_call_duration;
        permit.record(Outcome {
            failure: verdict.is_err(),
            slow,
        });
        let outcome = match (&verdict, slow) {
            (Err(_), _) => observe::OUTCOME_FAILURE,
            (Ok(_), true) => observe::OUTCOME_SLOW,
            (Ok(_), false) => observe::OUTCOME_SUCCESS,
        };
        observe::attempt(downstream, outcome, took);
        verdict.map_err(AttemptError::Failed)
    }

    fn url(&self, path: &str) -> Result<Url, String> {
        let base = &self.inner.base_url;
        let url = base
            .join(path.trim_start_matches('/'))
            .map_err(|e| format!("bad path `{path}`: {e}"))?;
        // A path that is itself a URL must not send the call (and our headers) elsewhere.
        if url.origin() != base.origin() {
            return Err(format!("path `{path}` leaves {base}"));
        }
        Ok(url)
    }
}

/// A request being prepared for a [`ResilientClient`]; nothing is sent until it is awaited.
#[must_use = "a call is sent only when awaited or sent"]
pub struct Call {
    client: ResilientClient,
    builder: Result<RequestBuilder, String>,
}

impl Call {
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|b| b.header(key, value))
    }

    /// Marks a POST/PATCH as safe to repeat (the downstream deduplicates on the key), which
    /// lets it be retried like a GET.
    pub fn idempotency_key(self, key: &str) -> Self {
        self.header(IDEMPOTENCY_KEY, key)
    }

    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|b| b.json(body))
    }

    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|b| b.query(query))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|b| b.body(body))
    }

    /// Anything else reqwest's builder can do (bearer auth, forms, …).
    pub fn with(self, f: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Self {
        self.map(f)
    }

    pub async fn send(self) -> Result<Response, CallError> {
        let request = self
            .builder
            .and_then(|b| b.build().map_err(|e| e.to_string()));
        match request {
            Ok(request) => self.client.execute(request).await,
            Err(reason) => Err(CallError::InvalidRequest {
                downstream: self.client.inner.downstream.clone(),
                reason,
            }),
        }
    }

    fn map(mut self, f: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Self {
        self.builder = self.builder.map(f);
        self
    }
}

impl IntoFuture for Call {
    type Output = Result<Response, CallError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

enum AttemptError {
    /// Stop here: rejected locally, or a request that can never work.
    Final(CallError),
    /// The downstream failed this attempt; maybe another will do.
    Failed(Failure),
}

enum Failure {
    Timeout,
    Connect(reqwest::Error),
    Status(StatusCode),
    Transport(reqwest::Error),
}

impl Failure {
    /// Connect errors, timeouts and gateway-style 5xx may pass; a 500 is a bug that a
    /// retry would only repeat, and 4xx never gets here.
    fn is_retriable(&self) -> bool {
        match self {
            Failure::Timeout | Failure::Connect(_) => true,
            Failure::Status(status) => matches!(
                *status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ),
            Failure::Transport(_) => false,
        }
    }

    fn into_error(self, downstream: &str, attempts: u32, timeout: Duration) -> CallError {
        let downstream = downstream.to_owned();
        match self {
            Failure::Timeout => CallError::Timeout {
                downstream,
                timeout,
                attempts,
            },
            Failure::Connect(source) => CallError::Connect {
                downstream,
                attempts,
                source,
            },
            Failure::Status(status) => CallError::Status {
                downstream,
                status,
                attempts,
            },
            Failure::Transport(source) => CallError::Transport {
                downstream,
                attempts,
                source,
            },
        }
    }
}

/// Whether repeating the request is safe: idempotent methods always; POST/PATCH (and
/// anything unknown) only with an `Idempotency-Key`.
fn may_retry(request: &Request) -> bool {
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    idempotent || request.headers().contains_key(IDEMPOTENCY_KEY)
}

/// Continues the current trace in the downstream (W3C `traceparent`/`tracestate`), unless
/// the caller set the headers itself.
fn propagate_trace_context(request: &mut Request) {
    if request.headers().contains_key(TRACEPARENT) {
        return;
    }
    let Some(trace) = telemetry::current_trace_context() else {
        return;
    };
    let headers = request.headers_mut();
    let pairs = [
        (TRACEPARENT, Some(trace.traceparent)),
        (TRACESTATE, trace.tracestate),
    ];
    for (name, value) in pairs {
        let Some(value) = value else { continue };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::settings::Tier;

    fn client(base: &str) -> ResilientClient {
        ResilientClient::new(
            "member",
            Url::parse(base).unwrap(),
            ClientSettings::preset(Tier::Critical),
        )
        .unwrap()
    }

    #[test]
    fn paths_resolve_under_the_base_url() {
        let member = client("http://member:8081");
        assert_eq!(
            member.url("/internal/members/7").unwrap().as_str(),
            "http://member:8081/internal/members/7"
        );
        let prefixed = client("http://gateway/member");
        assert_eq!(
            prefixed.url("/internal/members/7?x=1").unwrap().as_str(),
            "http://gateway/member/internal/members/7?x=1"
        );
    }

    #[test]
    fn a_path_cannot_point_at_another_host() {
        let member = client("http://member:8081/");
        assert!(member.url("http://elsewhere/steal").is_err());
        assert!(
            member
                .url("//elsewhere/steal")
                .unwrap()
                .as_str()
                .starts_with("http://member:8081/")
        );
    }

    #[test]
    fn base_urls_must_be_http() {
        let err = ResilientClient::new(
            "member",
            Url::parse("mailto:someone@example.com").unwrap(),
            ClientSettings::preset(Tier::Critical),
        )
        .unwrap_err();
        assert!(matches!(err, BuildError::BaseUrl { .. }), "{err}");
        assert!(err.to_string().contains("member"));
    }

    #[test]
    fn only_idempotent_or_keyed_requests_may_be_repeated() {
        let member = client("http://member:8081/");
        let build = |call: Call| call.builder.unwrap().build().unwrap();
        assert!(may_retry(&build(member.get("/x"))));
        assert!(may_retry(&build(member.put("/x"))));
        assert!(may_retry(&build(member.delete("/x"))));
        assert!(!may_retry(&build(member.post("/x"))));
        assert!(!may_retry(&build(member.patch("/x"))));
        assert!(may_retry(&build(member.post("/x").idempotency_key("k-1"))));
        assert!(may_retry(&build(
            member.patch("/x").header("idempotency-key", "k-2")
        )));
    }
}
