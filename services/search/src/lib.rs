//! search: full-text search over posts (Korean and English) in an embedded index kept current from Kafka.

mod config;
mod routes;

use service_runtime::kafka::KafkaProbe;
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

pub const SERVICE: ServiceName = ServiceName::Search;

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let redis = pool(&config.redis)?;
    let readiness = Readiness::default()
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.kafka)?);
    let service = ServiceBuilder::new(SERVICE, config.http)
        .readiness(readiness)
        .openapi(routes::openapi())
        .start(routes::configure)
        .await?;
    Ok(service)
}
