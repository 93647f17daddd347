//! queue's URL table. The runtime adds `/health/*`, `/metrics`, `/openapi.json` and
//! `/swagger-ui/`. Everything under `/api/v1` passes the edge (token, rate limit, protected
//! routes) first; the waiting room answers its own paths and the rest is proxied by prefix.
//! `/admin/**` (and the seed's `/actuator/gateway/routes`) take auth::RequireAdmin.

use actix_web::middleware::from_fn;
use actix_web::web;
use auth::{BearerAuth, RequireAdmin};
use utoipa::OpenApi;

use crate::api::{admin, queue};
use crate::gateway::{edge, proxy};

#[derive(OpenApi)]
#[openapi(
    paths(
        queue::lineup, queue::status, queue::stream, queue::leave_allowed, queue::leave_waiting,
        queue::jwks, admin::routes, admin::routes_seed_path, admin::room, admin::set_capacity,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "queue", description = "The API gateway and waiting room; every other /api/v1 path is proxied to its service"),
        (name = "admin", description = "Operators: ADMIN role from ADMIN_ALLOWED_CIDRS, off the public ingress"),
    )
)]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/gateway/routes")
            .wrap(RequireAdmin)
            .route(web::get().to(admin::routes)),
    )
    .service(
        web::resource("/actuator/gateway/routes")
            .wrap(RequireAdmin)
            .route(web::get().to(admin::routes_seed_path)),
    )
    .service(
        web::resource("/admin/queue/room")
            .wrap(RequireAdmin)
            .route(web::get().to(admin::room)),
    )
    .service(
        web::resource("/admin/queue/room/capacity")
            .wrap(RequireAdmin)
            .route(web::put().to(admin::set_capacity)),
    )
    .service(
        web::scope("/api/v1")
            .wrap(from_fn(edge::guard))
            .route("/queue/lineup", web::post().to(queue::lineup))
            .route("/queue/status", web::get().to(queue::status))
            .route("/queue/stream", web::get().to(queue::stream))
            .route(
                "/queue/allowed-in-token",
                web::delete().to(queue::leave_allowed),
            )
            .route(
                "/queue/waiting-token",
                web::delete().to(queue::leave_waiting),
            )
            .route("/queue/jwks.json", web::get().to(queue::jwks))
            .route("/{tail:.*}", web::route().to(proxy::forward)),
    );
}
