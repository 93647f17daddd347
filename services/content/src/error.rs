//! content's errors and how each answers.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use service_runtime::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("no such post")]
    PostNotFound,
    #[error("no such comment")]
    CommentNotFound,
    #[error("only the author may do this")]
    NotAuthor,
    #[error("replies are one level deep: reply to a top-level comment")]
    ReplyToReply,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyMismatch,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ContentError {
    fn to_http(&self) -> HttpError {
        let message = self.to_string();
        match self {
            ContentError::Http(err) => err.clone(),
            ContentError::PostNotFound | ContentError::CommentNotFound => {
                HttpError::not_found(message)
            }
            ContentError::NotAuthor => HttpError::forbidden(message),
            ContentError::ReplyToReply => HttpError::validation(message)
                .with_field("parent_id", "must be a top-level comment"),
            ContentError::IdempotencyMismatch => HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                message,
            ),
            ContentError::Db(err) => HttpError::internal(err),
            ContentError::Internal(err) => HttpError::internal(&format!("{err:#}")),
        }
    }
}

impl ResponseError for ContentError {
    fn status_code(&self) -> StatusCode {
        self.to_http().status
    }

    fn error_response(&self) -> HttpResponse {
        self.to_http().error_response()
    }
}

pub type Result<T> = std::result::Result<T, ContentError>;

/// A positive id from a path or body.
pub fn positive_id(raw: i64, field: &str) -> Result<i64> {
    if raw > 0 {
        Ok(raw)
    } else {
        Err(
            HttpError::bad_request(format!("{field} must be a positive integer"))
                .with_field(field, "must be positive")
                .into(),
        )
    }
}

/// A 422 for one field.
pub fn invalid(field: &str, message: String) -> ContentError {
    HttpError::validation(message.clone())
        .with_field(field, message)
        .into()
}
