//! member's errors and how each answers. Internal causes are logged, never shown.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use contracts::headers::RELOGIN_REQUIRED;
use service_runtime::HttpError;

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// An answer already shaped (validation, bad cursor, auth failures).
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("too many attempts; try again in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    #[error("no such member")]
    MemberNotFound,
    #[error("you cannot follow yourself")]
    SelfFollow,
    #[error("the refresh token is invalid, expired or revoked; log in again")]
    RefreshInvalid,
    #[error("the refresh token was already used; every session of this login is now revoked")]
    RefreshReused,
    #[error("login with {0} is not configured")]
    ProviderUnavailable(String),
    #[error("the login attempt is unknown, expired or already used; start again")]
    InvalidState,
    #[error("{0}")]
    OAuthCodeRejected(String),
    #[error("{0}")]
    OAuthIdentityRejected(String),
    #[error("the provider reported: {0}")]
    ProviderDenied(String),
    #[error("this {0} account is already linked to another member")]
    IdentityTaken(String),
    #[error("a {0} account is already linked to your account")]
    ProviderAlreadyLinked(String),
    #[error("no {0} account is linked")]
    NotLinked(String),
    #[error("this is your last way to log in; set a password or link another provider first")]
    LastLoginMethod,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl MemberError {
    /// A failed insert: `conflict` when it broke a unique constraint (someone else took the
    /// email or the identity first), else the database error.
    pub fn unique_or(err: sea_orm::DbErr, conflict: MemberError) -> Self {
        if crate::store::is_unique_violation(&err) {
            conflict
        } else {
            err.into()
        }
    }

    fn to_http(&self) -> HttpError {
        use MemberError::*;
        let message = self.to_string();
        match self {
            Http(err) => err.clone(),
            EmailTaken => HttpError::new(StatusCode::CONFLICT, "email_taken", message)
                .with_field("email", "already registered"),
            InvalidCredentials => HttpError::unauthorized("invalid_credentials", message),
            RateLimited(retry) => {
                HttpError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).with_header(
                    "Retry-After",
                    retry.as_secs_f64().ceil().max(1.0).to_string(),
                )
            }
            MemberNotFound => HttpError::not_found(message),
            SelfFollow => HttpError::bad_request(message).with_field("id", "is you"),
            RefreshInvalid => HttpError::unauthorized("refresh_invalid", message)
                .with_header(RELOGIN_REQUIRED, "true"),
            RefreshReused => HttpError::unauthorized("refresh_reused", message)
                .with_header(RELOGIN_REQUIRED, "true"),
            ProviderUnavailable(_) => HttpError::not_found(message),
            InvalidState => HttpError::new(StatusCode::BAD_REQUEST, "invalid_state", message),
            OAuthCodeRejected(_) => {
                HttpError::new(StatusCode::BAD_REQUEST, "oauth_code_rejected", message)
            }
            OAuthIdentityRejected(_) => HttpError::unauthorized("oauth_identity_rejected", message),
            ProviderDenied(_) => HttpError::new(StatusCode::BAD_REQUEST, "oauth_denied", message),
            IdentityTaken(_) => HttpError::new(StatusCode::CONFLICT, "identity_taken", message),
            ProviderAlreadyLinked(_) => {
                HttpError::new(StatusCode::CONFLICT, "already_linked", message)
            }
            NotLinked(_) => HttpError::not_found(message),
            LastLoginMethod => HttpError::new(StatusCode::CONFLICT, "last_login_method", message),
            Db(err) => HttpError::internal(err),
            Internal(err) => HttpError::internal(&format!("{err:#}")),
        }
    }
}

impl ResponseError for MemberError {
    fn status_code(&self) -> StatusCode {
        self.to_http().status
    }

    fn error_response(&self) -> HttpResponse {
        self.to_http().error_response()
    }
}

pub type Result<T> = std::result::Result<T, MemberError>;
