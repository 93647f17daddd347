//! MongoDB: `MONGODB_URI` (the path names the database), a client with short server-selection
//! timeouts so a down server is reported rather than waited on, and its probe.

use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::config::{ConfigError, EnvSource, ServiceName, string_or};
use crate::health::Probe;

#[derive(Debug, Clone)]
pub struct MongoSettings {
    /// `MONGODB_URI` (default `mongodb://127.0.0.1:27017/dailyfeed_<service>`).
    pub uri: String,
}

impl MongoSettings {
    pub fn from_env(env: &dyn EnvSource, service: ServiceName) -> Result<Self, ConfigError> {
        let default = format!("mongodb://127.0.0.1:27017/{}", service.default_database());
        let uri = string_or(env, "MONGODB_URI", &default);
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err(ConfigError::new(
                "MONGODB_URI",
                "<redacted>",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        Ok(Self { uri })
    }
}

/// A client (connections open on demand) and the database the URI names.
pub async fn connect(settings: &MongoSettings, service: ServiceName) -> anyhow::Result<Database> {
    let mut options = ClientOptions::parse(&settings.uri).await?;
    options.server_selection_timeout = Some(Duration::from_secs(3));
    options.connect_timeout = Some(Duration::from_secs(2));
    options
        .app_name
        .get_or_insert_with(|| format!("dailyfeed-{service}"));
    let database = options
        .default_database
        .clone()
        .unwrap_or_else(|| service.default_database());
    let client = Client::with_options(options)?;
    Ok(client.database(&database))
}

/// Readiness: `ping`.
pub struct MongoProbe(pub Database);

#[async_trait]
impl Probe for MongoProbe {
    fn name(&self) -> &str {
        "mongodb"
    }

    async fn check(&self) -> Result<(), String> {
        self.0
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
