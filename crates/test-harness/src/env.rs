//! Per-test environments: the service env vocabulary pointed at isolated resources.

use std::collections::HashMap;

use sqlx::Connection;

/// Default admin URL of the test Postgres (the machine's, or the test command's own).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_KAFKA_BROKERS: &str = "127.0.0.1:19092";
pub const DEFAULT_MONGODB_URI: &str = "mongodb://127.0.0.1:27018";

fn from_env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Exactly these variables and no others, for unit tests of configuration parsing.
pub fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A short random suffix for names (lower-case hex).
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A local port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Environment variables for one service under test.
#[derive(Debug, Clone)]
pub struct TestEnv {
    vars: HashMap<String, String>,
    suffix: String,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// Port 0, loopback, one worker, quiet logs.
    pub fn new() -> Self {
        let mut env = Self {
            vars: HashMap::new(),
            suffix: unique_suffix(),
        };
        env.set_mut("SERVER_HOST", "127.0.0.1");
        env.set_mut("SERVER_PORT", "0");
        env.set_mut("SERVER_WORKERS", "1");
        env.set_mut("SHUTDOWN_TIMEOUT_SECONDS", "5");
        env.set_mut("LOG_LEVEL", &from_env("TEST_LOG_LEVEL", "warn"));
        env
    }

    /// This test's unique suffix (also used in database, prefix and topic names).
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_mut(name, &value.into());
        self
    }

    fn set_mut(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    /// A fresh, empty database (`dft_<suffix>`) as `DATABASE_URL`.
    pub async fn postgres(self) -> Self {
        let admin = from_env("TEST_DATABASE_URL", DEFAULT_DATABASE_URL);
        let name = format!("dft_{}", self.suffix);
        let url = create_database(&admin, &name).await;
        self.set("DATABASE_URL", url)
            .set("DATABASE_MIGRATE_ON_START", "true")
    }

    /// The test Redis with a unique `REDIS_KEY_PREFIX`.
    pub fn redis(self) -> Self {
        let prefix = format!("t{}:", self.suffix);
        self.set("REDIS_URL", from_env("TEST_REDIS_URL", DEFAULT_REDIS_URL))
            .set("REDIS_KEY_PREFIX", prefix)
    }

    /// The test broker with a unique `KAFKA_TOPIC_PREFIX`.
    pub fn kafka(self) -> Self {
        let prefix = format!("t{}-", self.suffix);
        self.set(
            "KAFKA_BROKERS",
            from_env("TEST_KAFKA_BROKERS", DEFAULT_KAFKA_BROKERS),
        )
        .set("KAFKA_TOPIC_PREFIX", prefix)
    }

    /// The test MongoDB-protocol server with a unique database.
    pub fn mongodb(self) -> Self {
        let base = from_env("TEST_MONGODB_URI", DEFAULT_MONGODB_URI);
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&format!("/dft_{}", self.suffix));
        self.set("MONGODB_URI", url.to_string())
    }
}

/// Creates database `name` through the admin URL and returns a URL pointing at it.
pub async fn create_database(admin_url: &str, name: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot reach the test Postgres at {admin_url} ({e}); run the test command")
        });
    // The name is ours (dft_ + hex), never user input.
    let create = sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#));
    sqlx::raw_sql(create).execute(&mut conn).await.unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}
