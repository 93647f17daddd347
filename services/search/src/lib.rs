//! search: full-text search over posts (Korean and English) in an embedded tantivy index
//! per instance, kept current from content's events by a checkpointed consumer and
//! rebuildable from content. See docs/search.md.

pub mod analysis;
pub mod api;
mod config;
pub mod index;
pub mod indexer;
pub mod lag;
pub mod query;
pub mod rebuild;
mod routes;
pub mod search;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use contracts::TopicName;
use events::{CheckpointPolicy, ConsumerRunner};
use resilience::ResilientClient;
use service_runtime::kafka::KafkaProbe;
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::{Config, IndexSettings};

use crate::api::AppState;
use crate::index::SearchIndex;
use crate::indexer::{Applied, Indexer};
use crate::lag::CatchUp;
use crate::rebuild::Rebuilder;
use crate::search::Snapshots;

pub const SERVICE: ServiceName = ServiceName::Search;

/// Opens the index, starts the consumer (and a bootstrap if the index is empty) and serves.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let settings = config.index.clone();
    let dir = settings.dir.clone();
    let memory = settings.writer_memory;
    let index =
        Arc::new(tokio::task::spawn_blocking(move || SearchIndex::open(&dir, memory)).await??);
    let empty = index.live().searcher().num_docs() == 0;
    tracing::info!(dir = %settings.dir.display(), posts = index.live().live_posts(), "index open");

    let redis = pool(&config.redis)?;
    let content = ResilientClient::new("content", config.content_url, config.content_client)?
        .with_credentials(Arc::new(config.identity.clone()));
    let verifier = web::Data::new(auth::Verifier::over_http(
        config.auth.clone(),
        redis.clone(),
        &config.redis,
    )?);
    let admin = web::Data::new(config.admin.clone());
    let rebuilder = Rebuilder::new(Arc::clone(&index), content);
    let applied = Applied::default();
    let runner = ConsumerRunner::new(
        &config.events,
        &config.consumer_group,
        &[TopicName::CONTENT_EVENTS],
        redis.clone(),
        &config.redis.key_prefix,
        Arc::new(Indexer::new(
            Arc::clone(&index),
            applied.clone(),
            settings.crash_after_commits,
        )),
    )?
    .checkpointed(CheckpointPolicy {
        max_events: settings.commit_max_docs,
        max_interval: settings.commit_interval,
    });
    let redriver = runner.redriver();
    let catch_up = CatchUp::new(settings.ready_max_lag, rebuilder.clone());
    if empty && settings.bootstrap {
        rebuilder.start_bootstrap();
    }
    let (lag_client, content_topic) =
        CatchUp::client(&config.events.kafka, &config.consumer_group)?;
    catch_up
        .measure_once(
            &lag_client,
            &content_topic,
            &applied,
            Duration::from_secs(2),
        )
        .await;
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent));
    let state = web::Data::new(AppState {
        permits,
        index,
        snapshots: Snapshots::new(settings.cursor_ttl, 64),
        cursor: config.cursor.clone(),
        settings,
        rebuilder,
    });
    let readiness = Readiness::default()
        .with(catch_up.clone())
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.events.kafka)?);
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    let service = builder
        .openapi(routes::openapi())
        .spawn(runner.run(shutdown.clone()))
        .spawn(catch_up.watch(lag_client, content_topic, applied, shutdown))
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
