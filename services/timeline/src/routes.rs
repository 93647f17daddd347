//! timeline's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`; lib.rs adds the dead-letter admin routes.

use actix_web::web;
use auth::BearerAuth;
use utoipa::OpenApi;

use crate::api;

#[derive(OpenApi)]
#[openapi(
    paths(api::following, api::popular, api::most_commented, api::me),
    modifiers(&BearerAuth),
    tags((name = "timeline", description = "Feeds: following, popular, most commented, mine"))
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(events::admin::DeadLetterAdminDoc::openapi())
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/timeline")
            .route("/following", web::get().to(api::following))
            .route("/popular", web::get().to(api::popular))
            .route("/most-commented", web::get().to(api::most_commented))
            .route("/me", web::get().to(api::me)),
    );
}
