//! timeline: the read side. Follow feed, popular, most commented and my feed from its own
//! read model (Postgres `dailyfeed_timeline`), built from events by the backbone's consumer
//! and rebuildable from the source services (`timeline backfill`), with Redis cache-aside
//! for the hot pages and author profiles from member through the resilient client.
//! See docs/timeline.md.

pub mod api;
pub mod authors;
pub mod backfill;
pub mod cache;
mod config;
pub mod feeds;
mod migrations;
pub mod projector;
mod routes;
pub mod state;
pub mod store;

use std::sync::Arc;

use actix_web::web;
use auth::Verifier;
use contracts::TopicName;
use events::ConsumerRunner;
use resilience::ResilientClient;
use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy, migrate as apply_migrations};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;
pub use migrations::Migrator;

use crate::authors::Authors;
use crate::cache::Cache;
use crate::projector::Projector;
use crate::state::AppState;

pub const SERVICE: ServiceName = ServiceName::Timeline;

/// Applies pending database migrations (`timeline migrate`).
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = connect_lazy(&config.database)?;
    apply_migrations::<Migrator>(&db).await
}

/// Rebuilds the read model from content and member (`timeline backfill`).
pub async fn backfill(config: Config) -> anyhow::Result<backfill::Report> {
    let db = connect_lazy(&config.database)?;
    apply_migrations::<Migrator>(&db).await?;
    let identity = Arc::new(config.identity);
    let content = ResilientClient::new("content", config.content_url, config.content_client)?
        .with_credentials(identity.clone());
    let member = ResilientClient::new("member", config.member_url, config.member_client)?
        .with_credentials(identity);
    backfill::run(&db, &content, &member).await
}

/// Hourly inbox retention (every replica may run it: each run is one idempotent step).
async fn prune_inboxes(
    db: sea_orm::DatabaseConnection,
    keep: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(30));
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => match store::prune_inbox(&db, keep).await {
                Ok(Some(deleted)) => tracing::info!(deleted, "inbox pruned"),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "inbox prune failed; next hour"),
            },
        }
    }
}

/// Connects (lazily) to the service's dependencies, starts the consumer and serves.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let db = connect_lazy(&config.database)?;
    if config.database.migrate_on_start {
        apply_migrations::<Migrator>(&db).await?;
    }
    let redis = pool(&config.redis)?;
    let cache = Cache::new(
        redis.clone(),
        &config.redis.key_prefix,
        config.cache.local_ttl,
        config.cache.local_entries,
    );
    let member = ResilientClient::new("member", config.member_url.clone(), config.member_client)?
        .with_credentials(Arc::new(config.identity.clone()));
    let admin = web::Data::new(config.admin.clone());
    let verifier = web::Data::new(Verifier::over_http(
        config.auth.clone(),
        redis.clone(),
        &config.redis,
    )?);
    let runner = ConsumerRunner::new(
        &config.events,
        &config.consumer_group,
        &[TopicName::CONTENT_EVENTS, TopicName::MEMBER_EVENTS],
        redis.clone(),
        &config.redis.key_prefix,
        Arc::new(Projector::new(db.clone(), cache.clone())),
    )?;
    let redriver = runner.redriver();
    let state = web::Data::new(AppState {
        db: db.clone(),
        authors: Authors::new(member, cache.clone(), config.cache.author_ttl),
        cache,
        cursor: config.cursor.clone(),
        settings: config.cache.clone(),
        fills: Default::default(),
        inbox: Default::default(),
    });
    let readiness = Readiness::default()
        .with(PostgresProbe(db.clone()))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.events.kafka)?);
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    let service = builder
        .openapi(routes::openapi())
        .spawn(prune_inboxes(
            db.clone(),
            config.cache.inbox_keep,
            shutdown.clone(),
        ))
        .spawn(runner.run(shutdown))
        .start(move |cfg| {
            cfg.app_data(state.clone())
                .app_data(verifier.clone())
                .app_data(admin.clone());
            events::admin::dead_letter_routes(cfg, vec![redriver.clone()]);
            routes::configure(cfg);
        })
        .await?;
    Ok(service)
}
