//! content: posts (with edit history), comments and one level of replies, likes on posts and
//! comments. Every write commits its event to the outbox in the same transaction; the relay
//! publishes POST_*, COMMENT_*, LIKE_* to `content-events-yyyyMMdd`, keyed by post.

pub mod api;
mod config;
pub mod domain;
mod error;
mod migrations;
mod routes;
pub mod state;
pub mod store;

use std::time::Duration;

use actix_web::web;
use auth::Verifier;
use contracts::TopicName;
use events::OutboxRelay;
use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy, migrate as apply_migrations};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;
pub use migrations::Migrator;

use crate::state::AppState;

pub const SERVICE: ServiceName = ServiceName::Content;

/// Applies pending database migrations (`content migrate`).
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = connect_lazy(&config.database)?;
    apply_migrations::<Migrator>(&db).await
}

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let db = connect_lazy(&config.database)?;
    if config.database.migrate_on_start {
        apply_migrations::<Migrator>(&db).await?;
    }
    let redis = pool(&config.redis)?;
    let verifier = Verifier::over_http(config.auth.clone(), redis.clone(), &config.redis)?;
    let relay =
        OutboxRelay::from_config(db.clone(), &config.events, vec![TopicName::CONTENT_EVENTS])?;
    let relay_handle = relay.handle();
    let state = web::Data::new(AppState {
        db: db.clone(),
        cursor: config.cursor.clone(),
    });
    let verifier = web::Data::new(verifier);
    let peers = web::Data::new(config.service_peers.clone());
    let admin = web::Data::new(config.admin.clone());
    let readiness = Readiness::default()
        .with(PostgresProbe(db.clone()))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.events.kafka)?);
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    let service = builder
        .openapi(routes::openapi())
        .spawn(relay.run(shutdown.clone()))
        .spawn(prune_idempotency_keys(db, config.idempotency_ttl, shutdown))
        .start(move |cfg| {
            cfg.app_data(state.clone())
                .app_data(verifier.clone())
                .app_data(peers.clone())
                .app_data(admin.clone());
            events::admin::outbox_routes(cfg, relay_handle.clone());
            routes::configure(cfg);
        })
        .await?;
    Ok(service)
}

async fn prune_idempotency_keys(
    db: sea_orm::DatabaseConnection,
    ttl: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {
                if let Err(err) = store::idempotency::prune(&db, ttl).await {
                    tracing::warn!(error = %err, "cannot prune idempotency keys");
                }
            }
        }
    }
}
