//! image: profile and post images, validated by content, thumbnailed and stored through an
//! object-store API (S3, or a local directory); metadata in Postgres `dailyfeed_image`;
//! publishes IMAGE_UPLOAD / IMAGE_DELETE to `image-events-yyyyMMdd` through the outbox.

pub mod api;
mod config;
pub mod domain;
mod error;
mod migrations;
mod publish;
mod routes;
pub mod state;
pub mod store;

use std::sync::Arc;

use actix_web::web;
use auth::Verifier;
use contracts::TopicName;
use events::OutboxRelay;
use ratelimit::{Limit, RateLimiter};
use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy, migrate as apply_migrations};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};
use tokio::sync::Semaphore;

pub use config::{Config, S3Settings, StoreSettings, UploadLimits};
pub use migrations::Migrator;

use crate::state::AppState;
use crate::store::objects::{ObjectStorage, ObjectStoreProbe};

pub const SERVICE: ServiceName = ServiceName::Image;

/// Applies pending database migrations (`image migrate`).
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
    let objects = ObjectStorage::new(&config.store)?;
    let verifier = Verifier::over_http(config.auth.clone(), redis.clone(), &config.redis)?;
    let relay =
        OutboxRelay::from_config(db.clone(), &config.events, vec![TopicName::IMAGE_EVENTS])?;
    let relay_handle = relay.handle();
    let state = web::Data::new(AppState {
        db: db.clone(),
        objects: objects.clone(),
        limiter: RateLimiter::new(redis.clone(), &config.redis.key_prefix),
        upload_rate: Limit::per_minute("image:upload", config.limits.per_minute),
        cpu_slots: Arc::new(Semaphore::new(config.limits.decode_concurrency)),
        limits: config.limits,
        processing: Arc::new(config.processing),
        cache_max_age: config.cache_max_age,
    });
    let verifier = web::Data::new(verifier);
    let admin = web::Data::new(config.admin.clone());
    let readiness = Readiness::default()
        .with(PostgresProbe(db))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.events.kafka)?)
        .with(ObjectStoreProbe(objects));
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    let service = builder
        .openapi(routes::openapi())
        .spawn(relay.run(shutdown))
        .start(move |cfg| {
            cfg.app_data(state.clone())
                .app_data(verifier.clone())
                .app_data(admin.clone());
            events::admin::outbox_routes(cfg, relay_handle.clone());
            routes::configure(cfg);
        })
        .await?;
    Ok(service)
}
