//! content: posts, comments, replies and likes; every write commits its event to the outbox in the same transaction. Owns Postgres `dailyfeed_content`; publishes POST_*, COMMENT_*, LIKE_*.

mod config;
mod routes;

use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

pub const SERVICE: ServiceName = ServiceName::Content;

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let db = connect_lazy(&config.database)?;
    let redis = pool(&config.redis)?;
    let readiness = Readiness::default()
        .with(PostgresProbe(db))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.kafka)?);
    let service = ServiceBuilder::new(SERVICE, config.http)
        .readiness(readiness)
        .openapi(routes::openapi())
        .start(routes::configure)
        .await?;
    Ok(service)
}
