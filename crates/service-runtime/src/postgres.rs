//! PostgreSQL: `DATABASE_URL` / `DATABASE_MAX_CONNECTIONS`, a lazily connecting sea-orm pool
//! (a service starts even while Postgres is down, and reports it in readiness), and its probe.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, SqlxPostgresConnector};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::{ConfigError, EnvSource, ServiceName, parse_or, ranged_or, seconds_or};
use crate::health::Probe;

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/dailyfeed_<service>`).
    pub url: SecretString,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECONDS` (default 5): how long a query waits for a connection.
    pub acquire_timeout: Duration,
    /// `DATABASE_MIGRATE_ON_START` (default false): apply pending migrations at startup
    /// (development and tests; production runs `<service> migrate` as a separate job with a
    /// DDL-capable user, while the service's own user may only read and write rows).
    pub migrate_on_start: bool,
}

impl PostgresSettings {
    pub fn from_env(env: &dyn EnvSource, service: ServiceName) -> Result<Self, ConfigError> {
        let default = format!(
            "postgres://postgres@127.0.0.1:5432/{}",
            service.default_database()
        );
        let raw = env
            .get("DATABASE_URL")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or(default);
        // Validate now, so a typo fails startup rather than the first query.
        PgConnectOptions::from_str(&raw)
            .map_err(|e| ConfigError::new("DATABASE_URL", "<redacted>", e))?;
        Ok(Self {
            url: SecretString::from(raw),
            max_connections: ranged_or(env, "DATABASE_MAX_CONNECTIONS", 10, 1..=1000)?,
            acquire_timeout: seconds_or(env, "DATABASE_ACQUIRE_TIMEOUT_SECONDS", 5, 1)?,
            migrate_on_start: parse_or(env, "DATABASE_MIGRATE_ON_START", false)?,
        })
    }
}

/// A pool that opens connections on first use.
pub fn connect_lazy(settings: &PostgresSettings) -> anyhow::Result<DatabaseConnection> {
    let options = PgConnectOptions::from_str(settings.url.expose_secret())?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options);
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// Applies every pending migration of `M`.
pub async fn migrate<M: sea_orm_migration::MigratorTrait>(
    db: &DatabaseConnection,
) -> anyhow::Result<()> {
    M::up(db, None).await?;
    let applied = M::get_applied_migrations(db).await?.len();
    tracing::info!(applied, "database schema is up to date");
    Ok(())
}

/// Readiness: a round trip to Postgres.
pub struct PostgresProbe(pub DatabaseConnection);

#[async_trait]
impl Probe for PostgresProbe {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}
