//! The actix extractor: `AuthMember` in a handler's arguments means "this route needs a
//! valid access token"; `OptionalAuthMember` lets anonymous requests through but still
//! refuses a bad token.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::{FromRequest, HttpRequest, web};
use contracts::headers::{RELOGIN_REQUIRED, TOKEN_REFRESH_NEEDED};
use service_runtime::HttpError;
use service_runtime::http::ResponseHeaders;

use crate::verifier::{AuthError, Authenticated, Verifier};

/// The authenticated member of a request.
#[derive(Debug, Clone)]
pub struct AuthMember(pub Authenticated);

impl AuthMember {
    pub fn id(&self) -> i64 {
        self.0.member_id
    }
}

/// The member if the request carried a token, `None` if it carried none.
#[derive(Debug, Clone)]
pub struct OptionalAuthMember(pub Option<Authenticated>);

impl From<AuthError> for HttpError {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::Missing => HttpError::unauthorized("unauthorized", message)
                .with_header("WWW-Authenticate", "Bearer"),
            AuthError::Invalid(_) => HttpError::unauthorized("invalid_token", message)
                .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\""),
            AuthError::Expired => HttpError::unauthorized("token_expired", message)
                .with_header(TOKEN_REFRESH_NEEDED, "true"),
            AuthError::Revoked => HttpError::unauthorized("token_revoked", message)
                .with_header(RELOGIN_REQUIRED, "true"),
            AuthError::Unavailable(_) => HttpError::unavailable("auth_unavailable", message),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` without the header, an
/// error for any other form (the gateway's edge check reads headers the same way).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(AuthError::Invalid(
            "the Authorization header must be `Bearer <token>`".into(),
        )),
    }
}

async fn authenticate(req: HttpRequest) -> Result<Option<Authenticated>, HttpError> {
    let Some(token) = bearer_token(req.headers())? else {
        return Ok(None);
    };
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .ok_or_else(|| HttpError::internal(&"no Verifier registered as app data"))?;
    let member = verifier.verify(&token).await?;
    if member.refresh_needed {
        ResponseHeaders::add(&req, TOKEN_REFRESH_NEEDED, "true");
    }
    tracing::Span::current().record("member.id", member.member_id);
    Ok(Some(member))
}

impl FromRequest for AuthMember {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            authenticate(req)
                .await?
                .map(AuthMember)
                .ok_or_else(|| AuthError::Missing.into())
        })
    }
}

impl FromRequest for OptionalAuthMember {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await.map(OptionalAuthMember) })
    }
}
