//! Cross-cutting HTTP behaviour: a span and metrics for every request, the JSON 404, the
//! Prometheus endpoint, and a last-resort rewrite of any non-JSON error answer (405s from
//! actix's router, a handler's bare status) into the shared error body.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{HttpRequest, HttpResponse};
use contracts::ErrorBody;
use contracts::headers::{TRACEPARENT, TRACESTATE};
use tracing::Instrument;

use crate::error::{HttpError, code_for_status};

/// Headers a handler or extractor wants on the answer whatever it turns out to be (e.g. the
/// auth extractor's `X-Token-Refresh-Needed` for a token signed by a retired key). Insert
/// into the request's extensions; [`observe`] copies them onto the response.
#[derive(Debug, Clone, Default)]
pub struct ResponseHeaders(pub Vec<(HeaderName, HeaderValue)>);

impl ResponseHeaders {
    /// Adds `name: value` to the request's pending response headers.
    pub fn add(req: &HttpRequest, name: &str, value: &str) {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return;
        };
        let mut extensions = req.extensions_mut();
        match extensions.get_mut::<ResponseHeaders>() {
            Some(headers) => headers.0.push((name, value)),
            None => {
                extensions.insert(ResponseHeaders(vec![(name, value)]));
            }
        }
    }
}

/// Paths polled by probes and scrapers: measured, but not logged per request.
fn is_quiet(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}

/// Wraps each request in a span (joined to the caller's trace via `traceparent`) and
/// records `http_requests_total` and `http_request_duration_seconds` by method, route
/// pattern and status.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The route pattern, not the raw path, keeps metric cardinality bounded.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let quiet = is_quiet(req.path());
    let span = tracing::info_span!(
        "http_request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some(traceparent) = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok()) {
        let tracestate = req.headers().get(TRACESTATE).and_then(|v| v.to_str().ok());
        telemetry::set_parent_from(&span, traceparent, tracestate);
    }
    if let Some(trace_id) = span.in_scope(telemetry::current_trace_id) {
        span.record("trace_id", trace_id);
    }

    let mut result = next.call(req).instrument(span.clone()).await;
    if let Ok(res) = result.as_mut() {
        let extra = res.request().extensions().get::<ResponseHeaders>().cloned();
        for (name, value) in extra.map(|h| h.0).unwrap_or_default() {
            res.headers_mut().insert(name, value);
        }
    }
    let status = match &result {
        Ok(res) => res.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    let elapsed = started.elapsed();
    span.record("http.response.status_code", status.as_u16());
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    if !quiet {
        span.in_scope(|| {
            tracing::info!(
                status = status.as_u16(),
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "request handled"
            );
        });
    }
    result
}

/// Rewrites an error answer that is not already JSON into the shared body.
pub(crate) fn normalize_error<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match status.canonical_reason() {
        Some(reason) => format!(
            "{reason}: {} {}",
            res.request().method(),
            res.request().path()
        ),
        None => format!("request failed with status {}", status.as_u16()),
    };
    let body = ErrorBody::new(code_for_status(status), message);
    let (req, old) = res.into_parts();
    let mut new = HttpError::response(status, &body);
    // Keep headers such as Allow, Retry-After and WWW-Authenticate.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res = ServiceResponse::new(req, new).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// The answer when no route takes the request: 405 if the path exists with other methods
/// (actix hands those to the app's default service too), else 404.
pub(crate) async fn no_route(req: HttpRequest) -> HttpResponse {
    use actix_web::http::StatusCode;
    use contracts::error::codes;
    let (status, code, what) = match req.match_pattern() {
        Some(_) => (
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "method not allowed for",
        ),
        None => (StatusCode::NOT_FOUND, codes::NOT_FOUND, "no route for"),
    };
    let body = ErrorBody::new(code, format!("{what} {} {}", req.method(), req.path()));
    HttpError::response(status, &body)
}

/// Prometheus text exposition of every metric the process recorded.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(telemetry::prometheus().render())
}
