//! Admin endpoints for the backbone, mounted by services under `/internal/events`:
//! outbox stats and re-drive for publishers, dead-letter re-drive for consumers.

use actix_web::{HttpResponse, web};
use service_runtime::HttpError;

use crate::consumer::Redriver;
use crate::outbox::RelayHandle;

/// `GET /internal/events/outbox` (stats) and `POST /internal/events/outbox/redrive`.
pub fn outbox_routes(cfg: &mut web::ServiceConfig, relay: RelayHandle) {
    cfg.app_data(web::Data::new(relay))
        .route("/internal/events/outbox", web::get().to(outbox_stats))
        .route(
            "/internal/events/outbox/redrive",
            web::post().to(outbox_redrive),
        );
}

/// `POST /internal/events/dead-letters/redrive` for each consumer group of the service.
pub fn dead_letter_routes(cfg: &mut web::ServiceConfig, redrivers: Vec<Redriver>) {
    cfg.app_data(web::Data::new(redrivers)).route(
        "/internal/events/dead-letters/redrive",
        web::post().to(dead_letter_redrive),
    );
}

async fn outbox_stats(relay: web::Data<RelayHandle>) -> Result<HttpResponse, HttpError> {
    let stats = relay.stats().await.map_err(|e| HttpError::internal(&e))?;
    Ok(HttpResponse::Ok().json(stats))
}

async fn outbox_redrive(relay: web::Data<RelayHandle>) -> Result<HttpResponse, HttpError> {
    let redriven = relay.redrive().await.map_err(|e| HttpError::internal(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "redriven": redriven })))
}

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
