//! The runtime every dailyfeed service is built on.
//!
//! A service declares its configuration with the env vocabulary in [`config`], builds its
//! dependency handles (feature-gated modules [`postgres`], [`redis`], [`kafka`], [`mongodb`]),
//! and hands its routes and OpenAPI document to [`server::ServiceBuilder`]. The runtime adds
//! what every service serves the same way: `/health/live`, `/health/ready`, `/metrics`,
//! `/openapi.json`, `/swagger-ui/`, JSON errors for everything (404s included), request
//! spans and metrics, and graceful shutdown on SIGTERM/SIGINT.

pub mod client_ip;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
mod openapi;
pub mod server;
pub mod tls;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;

pub use client_ip::TrustedProxies;
pub use config::{ConfigError, EnvSource, Environment, HttpSettings, ProcessEnv, ServiceName};
pub use error::HttpError;
pub use health::{Probe, Readiness};
pub use server::{
    Command, RunningService, ServiceBuilder, run_main, run_main_with_commands,
    run_main_with_migrations,
};
