//! activity: who did what — post, comment, like and follow activity consumed from Kafka into MongoDB `member_activities`, served as "my activity" and "activity of members I follow".

mod config;
mod routes;

use service_runtime::kafka::KafkaProbe;
use service_runtime::mongodb::{MongoProbe, connect};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

pub const SERVICE: ServiceName = ServiceName::Activity;

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let mongo = connect(&config.mongodb, SERVICE).await?;
    let redis = pool(&config.redis)?;
    let readiness = Readiness::default()
        .with(MongoProbe(mongo))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.kafka)?);
    let service = ServiceBuilder::new(SERVICE, config.http)
        .readiness(readiness)
        .openapi(routes::openapi())
        .start(routes::configure)
        .await?;
    Ok(service)
}
