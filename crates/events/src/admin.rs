//! Admin endpoints for the backbone, mounted by services under `/admin/events` behind
//! [`auth::RequireAdmin`] (an ADMIN member's token from `ADMIN_ALLOWED_CIDRS`): outbox stats
//! and re-drive for publishers, dead-letter re-drive for consumers. The service registers
//! the guard's app data (`auth::AdminGuard`, `auth::Verifier`).

use actix_web::{HttpResponse, web};
use auth::RequireAdmin;
use contracts::ErrorBody;
use service_runtime::HttpError;

use crate::consumer::Redriver;
use crate::outbox::RelayHandle;

/// `GET /admin/events/outbox` (stats) and `POST /admin/events/outbox/redrive`.
pub fn outbox_routes(cfg: &mut web::ServiceConfig, relay: RelayHandle) {
    cfg.app_data(web::Data::new(relay))
        .service(
            web::resource("/admin/events/outbox")
                .wrap(RequireAdmin)
                .route(web::get().to(outbox_stats)),
        )
        .service(
            web::resource("/admin/events/outbox/redrive")
                .wrap(RequireAdmin)
                .route(web::post().to(outbox_redrive)),
        );
}

/// `POST /admin/events/dead-letters/redrive` for each consumer group of the service.
pub fn dead_letter_routes(cfg: &mut web::ServiceConfig, redrivers: Vec<Redriver>) {
    cfg.app_data(web::Data::new(redrivers)).service(
        web::resource("/admin/events/dead-letters/redrive")
            .wrap(RequireAdmin)
            .route(web::post().to(dead_letter_redrive)),
    );
}

/// The OpenAPI paths of [`outbox_routes`], for a publisher's document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(outbox_stats, outbox_redrive),
    tags((name = "admin", description = "Operators: ADMIN role from ADMIN_ALLOWED_CIDRS, off the public ingress"))
)]
pub struct OutboxAdminDoc;

/// The OpenAPI paths of [`dead_letter_routes`], for a consumer's document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(dead_letter_redrive),
    tags((name = "admin", description = "Operators: ADMIN role from ADMIN_ALLOWED_CIDRS, off the public ingress"))
)]
pub struct DeadLetterAdminDoc;

/// The outbox backlog: pending, dead and the oldest unsent age.
#[utoipa::path(get, path = "/admin/events/outbox", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Outbox stats"),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody)))]
async fn outbox_stats(relay: web::Data<RelayHandle>) -> Result<HttpResponse, HttpError> {
    let stats = relay.stats().await.map_err(|e| HttpError::internal(&e))?;
    Ok(HttpResponse::Ok().json(stats))
}

/// Gives dead outbox rows another round of attempts.
#[utoipa::path(post, path = "/admin/events/outbox/redrive", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "`{\"redriven\": n}`"),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody)))]
async fn outbox_redrive(relay: web::Data<RelayHandle>) -> Result<HttpResponse, HttpError> {
    let redriven = relay.redrive().await.map_err(|e| HttpError::internal(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "redriven": redriven })))
}

/// Replays this service's dead letters into their topics, one report per topic.
#[utoipa::path(post, path = "/admin/events/dead-letters/redrive", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "topic → re-drive report"),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody)))]
async fn dead_letter_redrive(
    redrivers: web::Data<Vec<Redriver>>,
) -> Result<HttpResponse, HttpError> {
    let mut reports = serde_json::Map::new();
    for redriver in redrivers.iter() {
        let report = redriver
            .redrive()
            .await
            .map_err(|e| HttpError::internal(&format!("{e:#}")))?;
        reports.insert(
            redriver.topic().to_owned(),
            serde_json::to_value(report).unwrap_or_default(),
        );
    }
    Ok(HttpResponse::Ok().json(reports))
}
