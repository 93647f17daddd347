//! The shared JSON error body as an actix error, and extractor configurations that turn
//! actix's own rejections (bad JSON, bad query, bad path, oversized body) into it.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use contracts::error::codes;
use contracts::{ErrorBody, FieldError};

/// An answer with a status and the shared body. Service error enums convert into this (or
/// implement `ResponseError` with [`HttpError::response`]).
#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Extra headers on the answer (`Retry-After`, `X-Token-Refresh-Needed`, …).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(code, message),
            headers: Vec::new(),
        }
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value.into()),
        ) {
            self.headers.push((name, value));
        }
        self
    }

    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::CONFLICT, message)
    }

    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.body.fields.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::VALIDATION_FAILED,
            message,
        )
    }

    /// A 500 whose cause is logged (with the trace id) but never shown to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "an internal error occurred; it has been logged",
        )
    }

    /// The JSON response for a status and body.
    pub fn response(status: StatusCode, body: &ErrorBody) -> HttpResponse {
        HttpResponse::build(status).json(body)
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.body.code,
            self.body.message
        )
    }
}

impl std::error::Error for HttpError {}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = Self::response(self.status, &self.body);
        for (name, value) in &self.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }
}

/// The error code a bare status maps to, for responses that carry no body of ours.
pub(crate) fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => codes::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => codes::METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => codes::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => codes::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::UNAUTHORIZED => codes::UNAUTHORIZED,
        StatusCode::FORBIDDEN => codes::FORBIDDEN,
        StatusCode::CONFLICT => codes::CONFLICT,
        StatusCode::TOO_MANY_REQUESTS => codes::RATE_LIMITED,
        StatusCode::UNPROCESSABLE_ENTITY => codes::VALIDATION_FAILED,
        StatusCode::SERVICE_UNAVAILABLE => codes::DEPENDENCY_UNAVAILABLE,
        s if s.is_server_error() => codes::INTERNAL,
        _ => codes::BAD_REQUEST,
    }
}

fn json_error(err: JsonPayloadError, limit: usize) -> HttpError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        }
        JsonPayloadError::ContentType => HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            HttpError::validation(format!("the request body does not match the schema: {e}"))
        }
        JsonPayloadError::Deserialize(e) => HttpError::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_JSON,
            format!("the request body is not valid JSON: {e}"),
        ),
        other => HttpError::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_JSON,
            format!("the request body could not be read: {other}"),
        ),
    }
}

/// JSON bodies up to `limit` bytes; every rejection answers with the shared body.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req: &HttpRequest| json_error(err, limit).into())
}

/// Query-string rejections as 400 with the shared body.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let QueryPayloadError::Deserialize(e) = &err else {
            return HttpError::bad_request(format!("invalid query string: {err}")).into();
        };
        HttpError::bad_request(format!("invalid query string: {e}")).into()
    })
}

/// Path-parameter rejections (e.g. a non-numeric or out-of-range id) as 400.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let PathError::Deserialize(e) = &err else {
            return HttpError::bad_request(format!("invalid path: {err}")).into();
        };
        HttpError::bad_request(format!("invalid path parameter: {e}")).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_400_and_type_errors_are_422() {
        let syntax = serde_json::from_str::<serde_json::Value>("{").expect_err("syntax");
        assert_eq!(
            json_error(JsonPayloadError::Deserialize(syntax), 10).status,
            StatusCode::BAD_REQUEST
        );
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            n: u8,
        }
        let data = serde_json::from_str::<T>(r#"{"n":"x"}"#).expect_err("data");
        assert_eq!(
            json_error(JsonPayloadError::Deserialize(data), 10).status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn overflow_names_the_limit() {
        let err = json_error(
            JsonPayloadError::OverflowKnownLength {
                length: 100,
                limit: 10,
            },
            10,
        );
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.body.message.contains("10 bytes"));
    }
}
