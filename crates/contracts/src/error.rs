//! The one error body every service answers with: `{"code","message","fields"}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON body of every 4xx/5xx answer. `code` is stable snake_case that clients switch
/// on; `message` is for humans; `fields` names the inputs that were wrong, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "validation_failed")]
    pub code: String,
    #[schema(example = "the request body is invalid")]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

/// One rejected input: which field (a JSON path, query or path parameter name) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "email")]
    pub field: String,
    #[schema(example = "must be a valid email address")]
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.fields.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }
}

/// Codes used by more than one service. Service-specific codes live in each service's
/// error enum.
pub mod codes {
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const MALFORMED_JSON: &str = "malformed_json";
    pub const VALIDATION_FAILED: &str = "validation_failed";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const CONFLICT: &str = "conflict";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const DEPENDENCY_UNAVAILABLE: &str = "dependency_unavailable";
    pub const INTERNAL: &str = "internal_error";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_the_three_documented_keys() {
        let body = ErrorBody::new("validation_failed", "bad").with_field("email", "required");
        let json = serde_json::to_value(&body).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "code": "validation_failed",
                "message": "bad",
                "fields": [{"field": "email", "message": "required"}]
            })
        );
    }

    #[test]
    fn fields_default_to_empty_when_absent() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"x","message":"y"}"#).expect("deserialise");
        assert!(body.fields.is_empty());
    }
}
