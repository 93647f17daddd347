//! Forwarding a request to the service that owns its path, streaming both ways: the client's
//! body is piped to the service chunk by chunk (uploads are never held whole), and the
//! service's answer is piped back the same way.
//!
//! A downstream that refuses connections answers 503 `downstream_unavailable` at once; one
//! that does not send its response head within the route's timeout answers 504
//! `gateway_timeout`; a broken exchange answers 502 `bad_gateway` — all with the shared JSON
//! body. Once the answer has started, a body that stalls longer than the route's timeout
//! between two chunks is cut, so nothing hangs.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use contracts::headers::{TRACEPARENT, TRACESTATE};
use futures_util::StreamExt;
use resilience::Outcome;

use crate::domain::request_path::PathRefusal;
use crate::domain::routes::Route;
use crate::error::QueueError;
use crate::gateway::edge::{self, Caller};
use crate::gateway::{Gateway, WorkerClient};
use crate::store::room::Leave;

/// Paths after whose success the member also leaves the waiting room (seed: logout leaves).
const LOGOUT_PATHS: [&str; 2] = ["/api/v1/auth/logout", "/api/v1/auth/logout-all"];

/// Buffered chunks between the client's upload and the downstream connection.
const UPLOAD_CHANNEL_CHUNKS: usize = 8;

/// RFC 9110 §7.6.1 connection-specific headers: never forwarded either way.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

/// Header names the `Connection` header lists are hop-by-hop too.
fn connection_listed<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// Request headers some servers and frameworks read as another path, host or method than
/// the one the edge decided on (`X-Original-URL` and `X-Rewrite-URL` rewrite the path in IIS
/// and Symfony, the method overrides turn a GET into a DELETE in several frameworks, the
/// forwarding headers name another origin): never forwarded. The gateway writes
/// `X-Forwarded-For` and `X-Forwarded-Proto` itself.
fn is_rewriting(name: &str) -> bool {
    matches!(
        name,
        "x-original-url"
            | "x-rewrite-url"
            | "x-original-uri"
            | "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
            | "x-forwarded-host"
            | "x-forwarded-prefix"
            | "x-forwarded-port"
            | "x-forwarded-server"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-real-ip"
            | "forwarded"
    )
}

fn forwarded_headers(req: &HttpRequest, gw: &Gateway) -> reqwest::header::HeaderMap {
    let listed = connection_listed(
        req.headers()
            .get_all(header::CONNECTION)
            .map(HeaderValue::as_bytes),
    );
    let mut out = reqwest::header::HeaderMap::with_capacity(req.headers().len() + 3);
    for (name, value) in req.headers() {
        let name = name.as_str();
        if is_hop_by_hop(name) || is_rewriting(name) || listed.iter().any(|l| l == name) {
            continue;
        }
        // actix speaks http 0.2, reqwest http 1: the same bytes, different types.
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    // X-Forwarded-For: the addresses we believe (client first), ending with the peer; what
    // a client wrote in front of that is dropped, so nobody behind us can be fooled by it.
    let peer = req.peer_addr().map(|a| a.ip());
    let trusted = &gw.settings.trusted_proxies;
    let chain = trusted
        .believed_chain(req.headers(), peer)
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = chain.parse() {
        out.insert("x-forwarded-for", value);
    }
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .filter(|_| peer.is_some_and(|p| trusted.is_trusted(p)))
        .and_then(|v| v.to_str().ok())
        .filter(|v| matches!(*v, "http" | "https"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if req.app_config().secure() {
                "https"
            } else {
                "http"
            }
            .to_owned()
        });
    if let Ok(value) = proto.parse() {
        out.insert("x-forwarded-proto", value);
    }
    // Our span's context when tracing exports; otherwise the caller's, untouched.
    if let Some(cx) = telemetry::current_trace_context() {
        if let Ok(value) = cx.traceparent.parse() {
            out.insert(TRACEPARENT, value);
        }
        match cx.tracestate.and_then(|s| s.parse().ok()) {
            Some(value) => {
                out.insert(TRACESTATE, value);
            }
            None => {
                out.remove(TRACESTATE);
            }
        }
    }
    out
}

/// The client's body as a `Send` stream: actix's payload lives on its worker thread, so a
/// local task pipes it into a channel whose receiver reqwest can own.
fn upload_body(mut payload: web::Payload) -> reqwest::Body {
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(UPLOAD_CHANNEL_CHUNKS);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    reqwest::Body::wrap_stream(stream)
}

/// The downstream's body, cut if it stalls longer than `idle` between chunks.
fn download_body(
    response: reqwest::Response,
    idle: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + 'static {
    let stream = response.bytes_stream();
    futures_util::stream::unfold(Some(Box::pin(stream)), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
            Ok(Some(Err(err))) => Some((Err(std::io::Error::other(err)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "downstream body stalled",
                )),
                None,
            )),
        }
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn observe(route: &Route, outcome: &'static str, started: Instant) {
    let labels = [("route", route.id.clone()), ("outcome", outcome.to_owned())];
    metrics::counter!("gateway_upstream_requests_total", &labels).increment(1);
    metrics::histogram!("gateway_upstream_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
}

/// Every `/api/v1/**` request the waiting room does not answer itself.
pub async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    gw: web::Data<Gateway>,
) -> Result<HttpResponse, QueueError> {
    // The edge checked that this path is canonical; it is the one every decision used.
    let path = req.path().to_owned();
    let route = gw
        .settings
        .routes
        .find(&path)
        .cloned()
        .ok_or_else(|| QueueError::NoRoute(path.clone()))?;
    let url = upstream_url(&route, &path, req.uri().query())?;

    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| QueueError::NoRoute(path.clone()))?;
    let client = match req.app_data::<web::Data<WorkerClient>>() {
        Some(own) => &own.0,
        None => &gw.client,
    };
    let mut request = client
        .request(method, url)
        .headers(forwarded_headers(&req, &gw));
    if has_body(&req) {
        request = request.body(upload_body(payload));
    }

    // The breaker sheds calls to a downstream that keeps failing or crawling, so the edge
    // answers 503 at once instead of holding every client for the whole timeout.
    let (permit, slow_after) = match gw.breakers.get(&route.id) {
        Some((breaker, slow_after)) => match breaker.try_acquire() {
            Ok(permit) => (Some(permit), *slow_after),
            Err(wait) => {
                metrics::counter!("gateway_upstream_requests_total", "route" => route.id.clone(), "outcome" => "circuit_open").increment(1);
                return Err(QueueError::CircuitOpen {
                    downstream: route.id,
                    retry_after_secs: wait.as_millis().div_ceil(1000).max(1) as u64,
                });
            }
        },
        None => (None, Duration::MAX),
    };
    let started = Instant::now();
    let sent = tokio::time::timeout(route.timeout, request.send()).await;
    if let Some(permit) = permit {
        let failure = match &sent {
            Ok(Ok(response)) => response.status().is_server_error(),
            _ => true,
        };
        permit.record(Outcome {
            failure,
            slow: started.elapsed() >= slow_after,
        });
    }
    let response = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(err)) if err.is_connect() => {
            observe(&route, "unavailable", started);
            tracing::warn!(route = route.id, error = %err, "downstream refused the connection");
            return Err(QueueError::DownstreamUnavailable {
                downstream: route.id,
            });
        }
        Ok(Err(err)) if err.is_timeout() => {
            observe(&route, "timeout", started);
            return Err(QueueError::GatewayTimeout {
                downstream: route.id,
                timeout_ms: millis(route.timeout),
            });
        }
        Ok(Err(err)) => {
            observe(&route, "bad_gateway", started);
            tracing::warn!(route = route.id, error = %err, "downstream exchange failed");
            return Err(QueueError::BadGateway {
                downstream: route.id,
            });
        }
        Err(_) => {
            observe(&route, "timeout", started);
            tracing::warn!(
                route = route.id,
                timeout_ms = millis(route.timeout),
                "downstream too slow"
            );
            return Err(QueueError::GatewayTimeout {
                downstream: route.id,
                timeout_ms: millis(route.timeout),
            });
        }
    };
    observe(&route, "answered", started);

    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status.is_success() && LOGOUT_PATHS.contains(&path.as_str()) {
        leave_on_logout(&gw, &req).await;
    }
    let mut builder = HttpResponse::build(status);
    let listed = connection_listed(
        response
            .headers()
            .get_all(reqwest::header::CONNECTION)
            .iter()
            .map(reqwest::header::HeaderValue::as_bytes),
    );
    for (name, value) in response.headers() {
        let name = name.as_str();
        if is_hop_by_hop(name) || name == "content-length" || listed.iter().any(|l| l == name) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder.append_header((name, value));
        }
    }
    if let Some(len) = response.content_length() {
        builder.no_chunking(len);
    }
    Ok(builder.streaming(download_body(response, route.timeout)))
}

/// The downstream URL for `path`, which must reach the service as exactly `path`: the URL
/// library resolves dot segments and backslashes, so a path it would change (the edge
/// refuses those; this is the last line) is refused rather than sent somewhere else.
fn upstream_url(route: &Route, path: &str, query: Option<&str>) -> Result<url::Url, QueueError> {
    let mut url = route.uri.clone();
    url.set_path(path);
    url.set_query(query);
    if url.path() != path || !path.starts_with(&route.prefix) {
        tracing::error!(
            route = route.id,
            "a path the edge accepted would not reach the service unchanged; refused"
        );
        return Err(QueueError::BadPath(PathRefusal::Unforwardable));
    }
    Ok(url)
}

async fn leave_on_logout(gw: &Gateway, req: &HttpRequest) {
    let Ok(Caller { member_id, .. }) = edge::caller(req) else {
        return;
    };
    if let Err(err) = gw.room.leave(member_id, Leave::Both).await {
        // The admission expires by itself; logout must not fail because of the queue.
        tracing::warn!(
            member_id,
            error = format!("{err:#}"),
            "cannot remove a logged-out member from the waiting room"
        );
    }
}
