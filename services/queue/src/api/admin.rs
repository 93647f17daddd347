//! Operators' endpoints, each behind `auth::RequireAdmin` (an ADMIN member's token from
//! `ADMIN_ALLOWED_CIDRS`; routes.rs wraps them): the route listing (`GET
//! /admin/gateway/routes`, also at the seed's `GET /actuator/gateway/routes`) with the
//! routing table, public paths, rate limits and protected routes this replica enforces, and
//! the waiting room's read-out (`GET /admin/queue/room`) and its run-time capacity
//! (`PUT /admin/queue/room/capacity`).

use actix_web::{HttpResponse, web};
use contracts::ErrorBody;
use serde::{Deserialize, Serialize};
use service_runtime::HttpError;
use utoipa::ToSchema;

use crate::domain::routes::Route;
use crate::gateway::Gateway;
use crate::store::room::{Overview, WaitingRoom};

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

/// Lists the gateway's routes. Not under `/api/v1`: `/admin` is off the public ingress.
#[utoipa::path(get, path = "/admin/gateway/routes", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The routing table and edge rules", body = RoutesView),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody)))]
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

/// The seed's path for [`routes`], behind the same guard.
#[utoipa::path(get, path = "/actuator/gateway/routes", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The routing table and edge rules", body = RoutesView),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody)))]
pub async fn routes_seed_path(gw: web::Data<Gateway>) -> HttpResponse {
    routes(gw).await
}

/// The waiting room now: capacity, admitted, waiting, and the scheduler's last tick.
#[utoipa::path(get, path = "/admin/queue/room", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Overview),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody)))]
pub async fn room(room: web::Data<WaitingRoom>) -> Result<HttpResponse, HttpError> {
    let overview = room.overview().await.map_err(|e| {
        tracing::warn!(error = format!("{e:#}"), "room read-out failed");
        HttpError::unavailable(
            "dependency_unavailable",
            "the waiting room cannot be read right now",
        )
    })?;
    Ok(HttpResponse::Ok().json(overview))
}

/// The room's capacity for every replica from now on.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CapacityRequest {
    /// Members admitted at once (1–1 000 000); `null` goes back to `ALLOWED_IN_MAX_CAPACITY`.
    pub capacity: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapacityChanged {
    /// The capacity in force now.
    pub capacity: u32,
    /// Members admitted from the queue by this change (a raise fills the new slots at once).
    pub admitted: u64,
}

/// Changes the room's capacity on every replica at once (a cut evicts no one: admissions
/// stop until enough admitted members leave).
#[utoipa::path(put, path = "/admin/queue/room/capacity", tag = "admin", security(("bearer" = [])),
    request_body = CapacityRequest,
    responses((status = 200, body = CapacityChanged),
        (status = 401, description = "No valid access token", body = ErrorBody),
        (status = 403, description = "Not an ADMIN, or not from ADMIN_ALLOWED_CIDRS", body = ErrorBody),
        (status = 422, description = "Capacity out of range", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody)))]
pub async fn set_capacity(
    room: web::Data<WaitingRoom>,
    body: web::Json<CapacityRequest>,
) -> Result<HttpResponse, HttpError> {
    let wanted = body.into_inner().capacity;
    if let Some(n) = wanted
        && !(1..=1_000_000).contains(&n)
    {
        return Err(
            HttpError::validation("capacity must be between 1 and 1000000")
                .with_field("capacity", format!("{n} given")),
        );
    }
    let (capacity, admitted) = room.set_capacity(wanted).await.map_err(|e| {
        tracing::warn!(error = format!("{e:#}"), "capacity change failed");
        HttpError::unavailable(
            "dependency_unavailable",
            "the waiting room cannot be changed right now",
        )
    })?;
    tracing::info!(capacity, admitted, "waiting-room capacity changed");
    Ok(HttpResponse::Ok().json(CapacityChanged { capacity, admitted }))
}
