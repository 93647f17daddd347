//! image's errors and how each answers.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use contracts::error::codes;
use service_runtime::HttpError;

use crate::domain::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the upload is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("no such image")]
    NotFound,
    #[error("only the owner may do this")]
    NotOwner,
    #[error("only a profile image can be replaced; delete a post image and upload another")]
    NotProfile,
    #[error("too many uploads; try again later")]
    RateLimited(Duration),
    #[error("the image workers are busy; try again shortly")]
    Busy,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error("object storage failed: {0}")]
    Storage(#[from] object_store::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ImageError {
    fn to_http(&self) -> HttpError {
        let message = self.to_string();
        match self {
            ImageError::Http(err) => err.clone(),
            ImageError::Rejected(rejection) => match rejection {
                Rejection::NotAnImage | Rejection::UnsupportedFormat(_) => HttpError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    codes::UNSUPPORTED_MEDIA_TYPE,
                    message,
                )
                .with_field("file", "must be a JPEG, PNG, WebP or GIF image"),
                Rejection::Corrupt(_) => {
                    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_image", message)
                        .with_field("file", "cannot be decoded")
                }
                Rejection::TooManyPixels { .. } => {
                    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "image_too_large", message)
                        .with_field("file", "too many pixels")
                }
            },
            ImageError::TooLarge(limit) => HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                message,
            )
            .with_field("file", format!("at most {limit} bytes")),
            ImageError::NotFound => HttpError::not_found(message),
            ImageError::NotOwner => HttpError::forbidden(message),
            ImageError::NotProfile => HttpError::conflict(message),
            ImageError::RateLimited(retry) => {
                HttpError::new(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED, message)
                    .with_header("Retry-After", retry_after(*retry))
            }
            ImageError::Busy => {
                HttpError::unavailable("busy", message).with_header("Retry-After", "1")
            }
            ImageError::Db(err) => HttpError::internal(err),
            ImageError::Storage(err) => {
                tracing::error!(error = %err, "object storage failed");
                HttpError::unavailable(
                    codes::DEPENDENCY_UNAVAILABLE,
                    "object storage is unavailable",
                )
            }
            ImageError::Internal(err) => HttpError::internal(&format!("{err:#}")),
        }
    }
}

fn retry_after(retry: Duration) -> String {
    retry.as_secs_f64().ceil().max(1.0).to_string()
}

impl ResponseError for ImageError {
    fn status_code(&self) -> StatusCode {
        self.to_http().status
    }

    fn error_response(&self) -> HttpResponse {
        self.to_http().error_response()
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// A 422 for one form field.
pub fn invalid(field: &str, message: impl Into<String>) -> ImageError {
    let message = message.into();
    HttpError::validation(format!("{field}: {message}"))
        .with_field(field, message)
        .into()
}
