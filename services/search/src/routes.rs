//! search's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`; lib.rs adds the dead-letter admin routes.

use actix_web::web;
use utoipa::OpenApi;

use crate::api;

#[derive(OpenApi)]
#[openapi(
    paths(api::search_posts, api::reindex, api::reindex_status),
    tags(
        (name = "search", description = "Full-text search over posts (Korean and English)"),
        (name = "internal", description = "Mesh-only: not routed by the gateway")
    )
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/search/posts", web::get().to(api::search_posts))
        .route("/internal/search/reindex", web::post().to(api::reindex))
        .route(
            "/internal/search/reindex",
            web::get().to(api::reindex_status),
        );
}
