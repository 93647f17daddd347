//! Test support. Tests talk to the real servers the test command starts (Postgres, Redis,
//! tansu, SecantusDB) and isolate themselves: each gets its own database, Redis key prefix,
//! Kafka topic prefix and Mongo database, so tests run in parallel without seeing each other.
//!
//! Where the servers are comes from `TEST_DATABASE_URL` (an admin URL), `TEST_REDIS_URL`,
//! `TEST_KAFKA_BROKERS` and `TEST_MONGODB_URI`, with the test command's defaults.
#![allow(clippy::unwrap_used)] // test support: a failed setup should fail the test loudly

pub mod api;
mod broker;
mod env;
pub mod kafka;
mod mongo;
pub mod platform;
mod process;

pub use broker::{Engine, TansuBroker};
pub use env::{TestEnv, closed_port, unique_suffix, vars};
pub use mongo::MongoServer;
pub use process::ServiceProcess;

/// A reqwest client for tests, with a timeout so a hang fails instead of stalling CI.
pub fn http_client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// rustls' ring provider, for reqwest clients built by tests (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `secs` seconds; panics
/// naming `what` on timeout.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
