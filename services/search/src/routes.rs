//! search's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`.

use actix_web::web;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(tags((name = "search", description = "Full-text search over posts")))]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) fn configure(_cfg: &mut web::ServiceConfig) {}
