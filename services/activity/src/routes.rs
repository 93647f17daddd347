//! activity's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`; lib.rs adds the dead-letter admin routes.

use actix_web::web;
use auth::BearerAuth;
use utoipa::OpenApi;

use crate::api;

#[derive(OpenApi)]
#[openapi(
    paths(api::me, api::following, api::of_member),
    modifiers(&BearerAuth),
    tags((name = "activity", description = "What members did: posts, comments, likes, follows"))
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(events::admin::DeadLetterAdminDoc::openapi())
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/activities")
            .route("/me", web::get().to(api::me))
            .route("/following", web::get().to(api::following))
            .route("/members/{id}", web::get().to(api::of_member)),
    );
}
