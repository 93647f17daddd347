//! member: accounts, access/refresh tokens with signing-key rotation, Google/Kakao OAuth,
//! profiles and follows. Owns Postgres `dailyfeed_member` and its Redis keys; publishes
//! MEMBER_*, FOLLOW and UNFOLLOW through the outbox.

pub mod api;
mod config;
pub mod domain;
mod error;
mod migrations;
mod routes;
pub mod state;
pub mod store;

use std::sync::Arc;

use actix_web::web;
use auth::{Blacklist, Verifier};
use contracts::TopicName;
use events::OutboxRelay;
use ratelimit::RateLimiter;
use service_runtime::kafka::KafkaProbe;
use service_runtime::postgres::{PostgresProbe, connect_lazy, migrate as apply_migrations};
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::{Config, LoginLimits, TokenSettings};
pub use migrations::Migrator;

use crate::domain::keys::{KeyRing, LocalJwks};
use crate::domain::oauth::OAuthProviders;
use crate::domain::passwords::PasswordHasher;
use crate::domain::refresh::RefreshTokens;
use crate::domain::tokens::{KnownDevices, TokenIssuer};
use crate::state::AppState;

pub const SERVICE: ServiceName = ServiceName::Member;

/// Applies pending database migrations (`member migrate`).
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
    let prefix = config.redis.key_prefix.clone();
    let keys = Arc::new(KeyRing::new(
        db.clone(),
        &config.tokens.master_key,
        config.tokens.access_ttl,
        config.tokens.rotation,
    ));
    // First start with an empty table creates a key; a database that is down is reported
    // by readiness and the key is created on first use.
    if let Err(err) = keys.rotate_if_due().await {
        tracing::warn!(error = format!("{err:#}"), "no signing key yet");
    }
    let blacklist = if config.auth.blacklist_mirror {
        Blacklist::mirrored(redis.clone(), &prefix, &config.redis.url)?
    } else {
        Blacklist::new(redis.clone(), &prefix)
    };
    let verifier = Verifier::new(
        LocalJwks(Arc::clone(&keys)),
        config.auth.clone(),
        Some(blacklist.clone()),
    );
    let relay =
        OutboxRelay::from_config(db.clone(), &config.events, vec![TopicName::MEMBER_EVENTS])?;
    let relay_handle = relay.handle();
    let state = web::Data::new(AppState {
        db: db.clone(),
        redis: redis.clone(),
        redis_prefix: prefix.clone(),
        tokens: TokenIssuer {
            keys: Arc::clone(&keys),
            refresh: RefreshTokens::new(
                redis.clone(),
                &prefix,
                config.tokens.refresh_ttl,
                config.tokens.family_lifetime,
            )
            .with_reuse_grace(config.tokens.reuse_grace),
            access_ttl: config.tokens.access_ttl,
            revocations: blacklist.clone(),
        },
        passwords: PasswordHasher::new(config.password)?,
        limiter: RateLimiter::new(redis.clone(), &prefix),
        login: config.login.clone(),
        devices: KnownDevices::new(redis.clone(), &prefix, config.login.device_ttl),
        blacklist,
        oauth: OAuthProviders::new(config.oauth.clone())?,
        cursor: config.cursor.clone(),
        cookie_secure: config.tokens.cookie_secure,
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let verifier = web::Data::new(verifier);
    let guards = (
        web::Data::new(config.service_peers.clone()),
        web::Data::new(config.admin.clone()),
    );
    let readiness = Readiness::default()
        .with(PostgresProbe(db))
        .with(RedisProbe(redis))
        .with(KafkaProbe::new(&config.events.kafka)?);
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    let service = builder
        .openapi(routes::openapi())
        .spawn(relay.run(shutdown.clone()))
        .spawn(Arc::clone(&keys).run_rotation(shutdown))
        .start(move |cfg| {
            cfg.app_data(state.clone())
                .app_data(verifier.clone())
                .app_data(guards.0.clone())
                .app_data(guards.1.clone());
            events::admin::outbox_routes(cfg, relay_handle.clone());
            routes::configure(cfg);
        })
        .await?;
    Ok(service)
}
