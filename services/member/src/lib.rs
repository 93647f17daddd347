//! member: accounts, access/refresh tokens with signing-key rotation, Google/Kakao OAuth,
//! profiles and follows. Owns Postgres `dailyfeed_member` and its Redis keys; publishes
//! MEMBER_*, FOLLOW and UNFOLLOW.

mod config;
mod migrations;
mod routes;

use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy, migrate as apply_migrations};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

pub const SERVICE: ServiceName = ServiceName::Member;

/// Applies pending database migrations (`member migrate`).
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
