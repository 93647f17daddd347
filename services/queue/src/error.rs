//! queue's errors → the shared JSON body, in one place. Codes are stable snake_case.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use service_runtime::HttpError;

use crate::domain::request_path::PathRefusal;

pub mod codes {
    pub const NOT_IN_QUEUE: &str = "not_in_queue";
    pub const ADMISSION_REQUIRED: &str = "queue_admission_required";
    pub const QUEUE_UNAVAILABLE: &str = "queue_unavailable";
    pub const DOWNSTREAM_UNAVAILABLE: &str = "downstream_unavailable";
    pub const GATEWAY_TIMEOUT: &str = "gateway_timeout";
    pub const BAD_GATEWAY: &str = "bad_gateway";
    pub const NO_ROUTE: &str = "not_found";
    pub const BAD_PATH: &str = "bad_path";
    pub const PATH_TOO_LONG: &str = "path_too_long";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("you are neither waiting nor admitted; line up with POST /api/v1/queue/lineup")]
    NotInQueue,
    #[error(
        "this route is open to admitted members only during the event; line up with POST /api/v1/queue/lineup and retry once admitted"
    )]
    AdmissionRequired,
    /// Redis failed: logged, never shown.
    #[error("the waiting room is unavailable")]
    Store(#[source] anyhow::Error),
    #[error("no service is routed at {0}")]
    NoRoute(String),
    #[error("{downstream} is unavailable")]
    DownstreamUnavailable { downstream: String },
    #[error("{downstream} is failing; calls are paused for {retry_after_secs} s (circuit open)")]
    CircuitOpen {
        downstream: String,
        retry_after_secs: u64,
    },
    #[error("{downstream} did not answer within {timeout_ms} ms")]
    GatewayTimeout { downstream: String, timeout_ms: u64 },
    #[error("{downstream} gave a broken answer")]
    BadGateway { downstream: String },
    /// A path that is not canonical (see `domain::request_path`): refused before any
    /// decision, never forwarded.
    #[error("{0}; send the path in its canonical form")]
    BadPath(PathRefusal),
    /// A method the gateway does not forward (TRACE, CONNECT, extension methods).
    #[error(
        "the gateway forwards {} only",
        crate::gateway::edge::FORWARDED_METHODS
    )]
    MethodNotAllowed,
}

impl QueueError {
    pub fn to_http(&self) -> HttpError {
        let message = self.to_string();
        match self {
            QueueError::NotInQueue => {
                HttpError::new(StatusCode::NOT_FOUND, codes::NOT_IN_QUEUE, message)
            }
            QueueError::AdmissionRequired => {
                HttpError::new(StatusCode::FORBIDDEN, codes::ADMISSION_REQUIRED, message)
                    .with_header("Location", "/api/v1/queue/lineup")
            }
            QueueError::Store(_) => HttpError::unavailable(codes::QUEUE_UNAVAILABLE, message)
                .with_header("Retry-After", "1"),
            QueueError::NoRoute(_) => {
                HttpError::new(StatusCode::NOT_FOUND, codes::NO_ROUTE, message)
            }
            QueueError::DownstreamUnavailable { .. } => {
                HttpError::unavailable(codes::DOWNSTREAM_UNAVAILABLE, message)
                    .with_header("Retry-After", "1")
            }
            QueueError::CircuitOpen {
                retry_after_secs, ..
            } => HttpError::unavailable(codes::DOWNSTREAM_UNAVAILABLE, message)
                .with_header("Retry-After", retry_after_secs.to_string()),
            QueueError::GatewayTimeout { .. } => {
                HttpError::new(StatusCode::GATEWAY_TIMEOUT, codes::GATEWAY_TIMEOUT, message)
            }
            QueueError::BadGateway { .. } => {
                HttpError::new(StatusCode::BAD_GATEWAY, codes::BAD_GATEWAY, message)
            }
            QueueError::BadPath(refusal) if refusal.too_long() => {
                HttpError::new(StatusCode::URI_TOO_LONG, codes::PATH_TOO_LONG, message)
            }
            QueueError::BadPath(_) => {
                HttpError::new(StatusCode::BAD_REQUEST, codes::BAD_PATH, message)
            }
            QueueError::MethodNotAllowed => HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                message,
            )
            .with_header("Allow", crate::gateway::edge::FORWARDED_METHODS),
        }
    }
}

impl From<anyhow::Error> for QueueError {
    fn from(err: anyhow::Error) -> Self {
        QueueError::Store(err)
    }
}

impl ResponseError for QueueError {
    fn status_code(&self) -> StatusCode {
        self.to_http().status
    }

    fn error_response(&self) -> HttpResponse {
        if let QueueError::Store(err) = self {
            tracing::error!(error = format!("{err:#}"), "waiting room store failed");
        }
        self.to_http().error_response()
    }
}
