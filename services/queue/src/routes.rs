//! queue's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`.

use actix_web::web;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(tags((name = "queue", description = "The API gateway and waiting room")))]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) fn configure(_cfg: &mut web::ServiceConfig) {}
