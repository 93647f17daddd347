//! The route listing (the seed's `GET /actuator/gateway/routes`): the routing table, the
//! public paths, the rate limits and the protected routes this replica enforces.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::routes::Route;
use crate::gateway::Gateway;

#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitView {
    pub path: String,
    pub max: u32,
    pub window_seconds: u64,
    /// `ip` or `member`.
    pub key: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoutesView {
    pub routes: Vec<Route>,
    pub public_paths: Vec<String>,
    pub protected_routes: Vec<String>,
    pub rate_limits: Vec<RateLimitView>,
}

/// Lists the gateway's routes. Not under `/api/v1`: keep `/actuator` off the public ingress.
#[utoipa::path(get, path = "/actuator/gateway/routes", tag = "queue",
    responses((status = 200, description = "The routing table and edge rules", body = RoutesView)))]
pub async fn routes(gw: web::Data<Gateway>) -> HttpResponse {
    let s = &gw.settings;
    HttpResponse::Ok().json(RoutesView {
        routes: s.routes.routes().to_vec(),
        public_paths: s.public_paths.iter().map(ToString::to_string).collect(),
        protected_routes: gw
            .protected_routes
            .iter()
            .map(ToString::to_string)
            .collect(),
        rate_limits: s
            .rate_limits
            .iter()
            .map(|r| RateLimitView {
                path: r.path.to_string(),
                max: r.max,
                window_seconds: r.window.as_secs(),
                key: r.key.as_str(),
            })
            .collect(),
    })
}
