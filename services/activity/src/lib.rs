//! activity: who did what. Consumes every activity event (posts, comments, likes, follows)
//! from the dated `content-events` and `member-events` topics into MongoDB
//! `member_activities`, and serves "my activity", "a member's activity" and "activity of the
//! members I follow". See docs/activity.md.

pub mod api;
mod config;
pub mod following;
pub mod recorder;
mod routes;
pub mod store;

use std::sync::Arc;

use actix_web::web;
use auth::Verifier;
use contracts::TopicName;
use events::ConsumerRunner;
use service_runtime::kafka::KafkaProbe;
use service_runtime::mongodb::{MongoProbe, connect};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::Config;

use crate::api::AppState;
use crate::following::Following;
use crate::recorder::Recorder;
use crate::store::ActivityStore;

pub const SERVICE: ServiceName = ServiceName::Activity;

/// Connects (lazily) to the service's dependencies, starts the consumer and serves.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let mongo = connect(&config.mongodb, SERVICE).await?;
    let redis = pool(&config.redis)?;
    let store = ActivityStore::new(&mongo, config.retention);
    let member = resilience::ResilientClient::new(
        "member",
        config.member_url.clone(),
        config.member_client.clone(),
    )?
    .with_credentials(std::sync::Arc::new(config.identity.clone()));
    let following = Following::new(
        member,
        redis.clone(),
        &config.redis.key_prefix,
        config.following_ttl,
    );
    let verifier = web::Data::new(Verifier::over_http(
        config.auth.clone(),
        redis.clone(),
        &config.redis,
    )?);
    let admin = web::Data::new(config.admin.clone());
    let runner = ConsumerRunner::new(
        &config.events,
        &config.consumer_group,
        &[TopicName::CONTENT_EVENTS, TopicName::MEMBER_EVENTS],
        redis.clone(),
        &config.redis.key_prefix,
        Arc::new(Recorder::new(store.clone(), following.clone())),
    )?;
    let redriver = runner.redriver();
    let state = web::Data::new(AppState {
        store: store.clone(),
        following,
        cursor: config.cursor.clone(),
    });
    let readiness = Readiness::default()
        .with(MongoProbe(mongo))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.events.kafka)?);
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    // Indexes first when Mongo is up; otherwise the first write creates them.
    if let Err(err) = store.ensure_indexes().await {
        tracing::warn!(error = %err, "MongoDB not reachable at start: indexes created on first write");
    }
    let service = builder
        .openapi(routes::openapi())
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
