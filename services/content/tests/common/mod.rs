//! content with a real member beside it (JWKS, blacklist), on the test servers.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use contracts::auth::MemberRole;
use member::domain::keys::KeyRing;
use reqwest::Response;
use serde_json::Value;
use service_runtime::RunningService;
use test_harness::TestEnv;

pub struct Stack {
    pub member: RunningService,
    pub content: RunningService,
    pub env: TestEnv,
    pub base: String,
    pub client: reqwest::Client,
    keys: Arc<KeyRing>,
}

pub async fn spawn(overrides: &[(&str, &str)]) -> Stack {
    test_harness::install_crypto_provider();
    let member_env = TestEnv::new().postgres().await.redis().kafka();
    let member_config = member::Config::from_env(member_env.vars()).unwrap();
    let member_db = service_runtime::postgres::connect_lazy(&member_config.database).unwrap();
    let keys = Arc::new(KeyRing::new(
        member_db,
        &member_config.tokens.master_key,
        member_config.tokens.access_ttl,
        member_config.tokens.rotation,
    ));
    let member = member::start(member_config).await.unwrap();
    let mut env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        // Share member's Redis namespace: the logout blacklist is read across services.
        .set(
            "REDIS_KEY_PREFIX",
            member_env.get("REDIS_KEY_PREFIX").unwrap(),
        )
        .set("MEMBER_URL", member.base_url());
    for (k, v) in overrides {
        env = env.set(k, *v);
    }
    let content = content::start(content::Config::from_env(env.vars()).unwrap())
        .await
        .unwrap();
    Stack {
        base: content.base_url(),
        member,
        content,
        env,
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        keys,
    }
}

impl Stack {
    /// A valid access token for `member_id`, signed by member's active key.
    pub async fn token(&self, member_id: i64) -> String {
        self.keys
            .access_token(
                member_id,
                MemberRole::User,
                std::time::Duration::from_secs(600),
            )
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    pub async fn create_post(&self, token: &str, body: &str) -> Value {
        let res = self
            .send(
                reqwest::Method::POST,
                "/api/v1/posts",
                Some(token),
                Some(serde_json::json!({"body": body})),
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    pub fn topic(&self) -> String {
        format!(
            "{}content-events-{}",
            self.env.get("KAFKA_TOPIC_PREFIX").unwrap(),
            chrono::Utc::now().format("%Y%m%d")
        )
    }

    pub fn brokers(&self) -> String {
        self.env.get("KAFKA_BROKERS").unwrap().to_owned()
    }

    pub async fn stop(self) {
        self.content.stop().await;
        self.member.stop().await;
    }
}
