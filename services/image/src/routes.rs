//! image's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`.

use actix_web::web;
use auth::BearerAuth;
use utoipa::OpenApi;

use crate::api::{serve, upload};

#[derive(OpenApi)]
#[openapi(
    paths(upload::upload, upload::replace, upload::delete, serve::original, serve::thumbnail),
    modifiers(&BearerAuth),
    tags((name = "images", description = "Profile and post images: validated, thumbnailed, cached as immutable"))
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(events::admin::OutboxAdminDoc::openapi())
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/images")
            .route("", web::post().to(upload::upload))
            .route("/{id}", web::get().to(serve::original))
            .route("/{id}", web::put().to(upload::replace))
            .route("/{id}", web::delete().to(upload::delete))
            .route("/{id}/thumbnail", web::get().to(serve::thumbnail)),
    );
}
