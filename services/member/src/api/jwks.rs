//! The public keys verifiers need.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};

use crate::error::Result;
use crate::state::AppState;

/// Every key that may still verify a token: the active one and those retired less than an
/// access-token lifetime ago. Cached for a minute; verifiers also refetch on an unknown `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set (Ed25519 OKP keys, `status` = active | retired)")))]
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse> {
    let set = state.tokens.keys.jwks().await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .json(set))
}
