//! image: profile and post images, validated by content, thumbnailed and stored through an object-store API; metadata in Postgres `dailyfeed_image`; publishes IMAGE_*.

mod config;
mod migrations;
mod routes;

use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy, migrate as apply_migrations};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

pub const SERVICE: ServiceName = ServiceName::Image;

/// Applies pending database migrations (`image migrate`).
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = connect_lazy(&config.database)?;
    apply_migrations::<migrations::Migrator>(&db).await
}

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let db = connect_lazy(&config.database)?;
    if config.database.migrate_on_start {
        apply_migrations::<migrations::Migrator>(&db).await?;
    }
    let readiness = Readiness::default()
        .with(PostgresProbe(db))
        .with(KafkaProbe::new(&config.kafka)?);
    let service = ServiceBuilder::new(SERVICE, config.http)
        .readiness(readiness)
        .openapi(routes::openapi())
        .start(routes::configure)
        .await?;
    Ok(service)
}
