//! search's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`; lib.rs adds the dead-letter admin routes. `/admin/**` takes auth::RequireAdmin.

use actix_web::web;
use auth::BearerAuth;
use utoipa::OpenApi;

use crate::api;

#[derive(OpenApi)]
#[openapi(
    paths(api::search_posts, api::reindex, api::reindex_status),
    modifiers(&BearerAuth),
    tags(
        (name = "search", description = "Full-text search over posts (Korean and English)"),
        (name = "admin", description = "Operators: ADMIN role from ADMIN_ALLOWED_CIDRS, off the public ingress")
    )
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(events::admin::DeadLetterAdminDoc::openapi())
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/search/posts", web::get().to(api::search_posts))
        .service(
            web::resource("/admin/search/reindex")
                .wrap(auth::RequireAdmin)
                .route(web::post().to(api::reindex))
                .route(web::get().to(api::reindex_status)),
        );
}
