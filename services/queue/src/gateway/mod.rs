//! The gateway: the edge checks every `/api/v1/**` request ([`edge`]), then the waiting
//! room's own handlers answer it or [`proxy`] streams it to the service that owns the path.

pub mod edge;
pub mod proxy;

use std::collections::HashMap;
use std::time::Duration;

use auth::Verifier;
use ratelimit::RateLimiter;
use resilience::CircuitBreaker;

use crate::config::GatewaySettings;
use crate::domain::paths::PathRule;
use crate::store::room::WaitingRoom;

/// Everything the edge and the proxy share (one per process, behind `web::Data`).
pub struct Gateway {
    pub settings: GatewaySettings,
    pub protected_routes: Vec<PathRule>,
    pub verifier: Verifier,
    pub limiter: RateLimiter,
    pub room: WaitingRoom,
    /// Used when a worker has no client of its own (see [`WorkerClient`]).
    pub client: reqwest::Client,
    /// One breaker per route id, with the duration from which a call counts as slow.
    pub breakers: HashMap<String, (CircuitBreaker, Duration)>,
}

/// Each HTTP worker's own downstream client: hyper runs a connection's I/O on the runtime
/// that opened it, so a client shared by all workers would bounce every proxied request
/// through another worker's thread. Per worker, a request and its connection stay on one
/// thread.
pub struct WorkerClient(pub reqwest::Client);

impl Gateway {
    pub fn breakers(settings: &GatewaySettings) -> HashMap<String, (CircuitBreaker, Duration)> {
        settings
            .breakers
            .iter()
            .map(|(id, s)| {
                (
                    id.clone(),
                    (CircuitBreaker::new(id, s.clone()), s.slow_call_duration),
                )
            })
            .collect()
    }
}
