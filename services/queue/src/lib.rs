//! queue: the API gateway with a waiting room: routes /api/v1/** to the services, verifies JWTs, rate-limits and admits members through a Redis waiting room.

mod config;
mod routes;

use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

pub const SERVICE: ServiceName = ServiceName::Queue;

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let redis = pool(&config.redis)?;
    let readiness = Readiness::default().with(RedisProbe(redis));
    let service = ServiceBuilder::new(SERVICE, config.http)
        .readiness(readiness)
        .openapi(routes::openapi())
        .start(routes::configure)
        .await?;
    Ok(service)
}
