//! queue: the API gateway with a waiting room: routes /api/v1/** to the services, verifies
//! JWTs, rate-limits and admits members through a Redis waiting room. See docs/queue.md.

pub mod api;
mod config;
pub mod domain;
mod error;
pub mod gateway;
pub mod hub;
mod routes;
pub mod scheduler;
pub mod store;
pub mod stream_listener;

use std::time::Duration;

use actix_web::web;
use auth::Verifier;
use ratelimit::RateLimiter;
use service_runtime::redis::{RedisProbe, pool};
use service_runtime::{Readiness, RunningService, ServiceBuilder, ServiceName};

pub use config::{Config, GatewaySettings, WaitingRoomSettings};
pub use domain::admission::{AdmissionClaims, AdmissionKey, AdmissionSigner};

use crate::gateway::{Gateway, WorkerClient};
use crate::hub::Hub;
use crate::store::room::{RoomSettings, WaitingRoom};

pub const SERVICE: ServiceName = ServiceName::Queue;

/// The HTTP client for the downstream services: pooled keep-alive connections, no
/// redirects followed (a 302 from OAuth goes back to the browser), no decompression.
fn downstream_client(pool_idle_per_host: usize) -> anyhow::Result<reqwest::Client> {
    service_runtime::tls::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(pool_idle_per_host)
        .pool_idle_timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()?)
}

/// Connects (lazily) to the service's dependencies and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    Ok(start_listeners(config).await?.0)
}

/// [`start`], also telling where the lean stream listener (`QUEUE_STREAM_PORT`) listens.
pub async fn start_listeners(
    config: Config,
) -> anyhow::Result<(RunningService, Option<std::net::SocketAddr>)> {
    let redis = pool(&config.redis)?;
    let prefix = config.redis.key_prefix.clone();
    let room_config = &config.room;
    let signer = AdmissionSigner::new(&room_config.admission_key, room_config.admission_token_ttl)?;
    let room = WaitingRoom::new(
        redis.clone(),
        &prefix,
        RoomSettings {
            capacity: room_config.capacity,
            duration: room_config.duration,
            abandon_after: room_config.abandon_after,
            rate_window: room_config.rate_window,
        },
    );
    let hub = Hub::new(
        room.clone(),
        signer.clone(),
        room_config.position_interval,
        room_config.heartbeat_interval,
    );
    let verifier = Verifier::over_http(config.auth.clone(), redis.clone(), &config.redis)?;
    let admin_data = web::Data::new(config.admin.clone());
    let verifier_data = web::Data::new(verifier.clone());
    let pool_idle_per_host = config.gateway.pool_idle_per_host;
    let gateway = web::Data::new(Gateway {
        client: downstream_client(pool_idle_per_host)?,
        limiter: RateLimiter::new(redis.clone(), &prefix),
        breakers: Gateway::breakers(&config.gateway),
        settings: config.gateway,
        protected_routes: room_config.protected_routes.clone(),
        verifier,
        room: room.clone(),
    });
    let readiness = Readiness::default().with(RedisProbe(redis));
    let host = config.http.host;
    let builder = ServiceBuilder::new(SERVICE, config.http).readiness(readiness);
    let shutdown = builder.shutdown_token();
    let scheduler_interval = room_config.scheduler_interval;
    let room_data = web::Data::new(room.clone());
    let hub_data = web::Data::new(hub.clone());
    let signer_data = web::Data::new(signer);
    let mut stream_addr = None;
    let mut builder = builder;
    if let Some(port) = room_config.stream_port {
        let listener = tokio::net::TcpListener::bind((host, port)).await?;
        stream_addr = Some(listener.local_addr()?);
        builder = builder.spawn(stream_listener::serve(
            listener,
            gateway.clone(),
            hub.clone(),
            shutdown.clone(),
        ));
    }
    let service = builder
        .openapi(routes::openapi())
        .spawn(
            hub.clone()
                .listen(config.redis.url.clone(), shutdown.clone()),
        )
        .spawn(hub.run_timers(shutdown.clone()))
        .spawn(scheduler::run(room, scheduler_interval, shutdown))
        .start(move |cfg| {
            // Runs once per worker: each gets its own connection pool (see WorkerClient).
            let client =
                downstream_client(pool_idle_per_host).unwrap_or_else(|_| gateway.client.clone());
            cfg.app_data(web::Data::new(WorkerClient(client)))
                .app_data(gateway.clone())
                .app_data(room_data.clone())
                .app_data(hub_data.clone())
                .app_data(signer_data.clone())
                .app_data(admin_data.clone())
                .app_data(verifier_data.clone());
            routes::configure(cfg);
        })
        .await?;
    Ok((service, stream_addr))
}
