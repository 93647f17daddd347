//! activity with real member and content services beside it, on the test servers: member
//! issues tokens and follow lists, content writes posts/comments/likes through its outbox,
//! and activity consumes the same (test-prefixed) topics into its own Mongo database.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use activity::store::{Activity, ActivityStore};
use contracts::EventEnvelope;
use contracts::auth::MemberRole;
use member::domain::keys::KeyRing;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_runtime::RunningService;
use test_harness::TestEnv;

pub use test_harness::api::PASSWORD;

pub struct Stack {
    pub member: Option<RunningService>,
    pub content: RunningService,
    pub activity: Option<RunningService>,
    pub member_env: TestEnv,
    pub activity_env: TestEnv,
    pub client: reqwest::Client,
    keys: Arc<KeyRing>,
}

/// member and content running; activity not yet (see [`Stack::start_activity`]).
pub async fn spawn_without_activity() -> Stack {
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
    let shared = |env: TestEnv| {
        env.set(
            "KAFKA_TOPIC_PREFIX",
            member_env.get("KAFKA_TOPIC_PREFIX").unwrap(),
        )
        .set(
            "REDIS_KEY_PREFIX",
            member_env.get("REDIS_KEY_PREFIX").unwrap(),
        )
        .set("MEMBER_URL", member.base_url())
    };
    let content_env = shared(TestEnv::new().postgres().await.redis().kafka())
        .set("OUTBOX_POLL_INTERVAL_MS", "50");
    let content = content::start(content::Config::from_env(content_env.vars()).unwrap())
        .await
        .unwrap();
    let activity_env = shared(TestEnv::new().redis().kafka().mongodb())
        .set("KAFKA_METADATA_REFRESH_MS", "500")
        .set("CONSUMER_BACKOFF_BASE_MS", "100")
        .set("CONSUMER_BACKOFF_MAX_MS", "1000");
    Stack {
        member: Some(member),
        content,
        activity: None,
        member_env,
        activity_env,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        keys,
    }
}

/// member, content and activity running.
pub async fn spawn(activity_overrides: &[(&str, &str)]) -> Stack {
    let mut stack = spawn_without_activity().await;
    stack.start_activity(activity_overrides).await;
    stack
}

impl Stack {
    pub async fn start_activity(&mut self, overrides: &[(&str, &str)]) {
        let mut env = self.activity_env.clone();
        for (k, v) in overrides {
            env = env.set(k, *v);
        }
        self.activity_env = env;
        let config = activity::Config::from_env(self.activity_env.vars()).unwrap();
        self.activity = Some(activity::start(config).await.unwrap());
    }

    pub async fn stop_activity(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.stop().await;
        }
    }

    pub async fn stop_member(&mut self) {
        if let Some(member) = self.member.take() {
            member.stop().await;
        }
    }

    pub fn member_url(&self) -> String {
        self.member.as_ref().unwrap().base_url()
    }

    pub fn activity_url(&self) -> String {
        self.activity.as_ref().unwrap().base_url()
    }

    /// A valid access token for `member_id` (no member row needed), signed by member's key.
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

    /// Registers a real member through member's API; returns its id and a token.
    pub async fn register(&self, tag: &str) -> (i64, String) {
        let email = format!("{tag}-{}@example.com", test_harness::unique_suffix());
        let (status, body) = self
            .call(
                Method::POST,
                &format!("{}/api/v1/auth/register", self.member_url()),
                None,
                Some(json!({"email": email, "password": PASSWORD, "nickname": tag})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().unwrap();
        (id, self.token(id).await)
    }

    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        test_harness::api::call(&self.client, method, url, token, body).await
    }

    /// A content API call; asserts success.
    pub async fn content(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!("{}{path}", self.content.base_url());
        let (status, body) = self.call(method, &url, Some(token), body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn create_post(&self, token: &str, title: &str) -> i64 {
        let post = self
            .content(
                Method::POST,
                "/api/v1/posts",
                token,
                Some(json!({"title": title, "body": format!("{title}: the body")})),
            )
            .await;
        post["id"].as_i64().unwrap()
    }

    /// `GET {activity}{path}`.
    pub async fn activities(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.activity_url());
        self.call(Method::GET, &url, Some(token), None).await
    }

    /// The `type`s listed at `path` (first page), newest first.
    pub async fn listed_types(&self, path: &str, token: &str) -> Vec<String> {
        let (status, body) = self.activities(path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The activity service's store, on its Mongo database.
    pub async fn store(&self) -> ActivityStore {
        let config = activity::Config::from_env(self.activity_env.vars()).unwrap();
        let db = service_runtime::mongodb::connect(&config.mongodb, activity::SERVICE)
            .await
            .unwrap();
        ActivityStore::new(&db, config.retention)
    }

    /// Every stored document of a member, hidden ones too, oldest first.
    pub async fn stored(&self, member_id: i64) -> Vec<Activity> {
        self.store().await.all_of(member_id).await.unwrap()
    }

    /// Publishes `event` straight to its dated topic (as the relay would), creating the
    /// topic if needed.
    pub async fn publish(&self, event: &EventEnvelope) {
        self.publish_raw(event, &serde_json::to_vec(event).unwrap())
            .await;
    }

    /// Publishes arbitrary bytes to the topic `event` belongs to.
    pub async fn publish_raw(&self, event: &EventEnvelope, bytes: &[u8]) {
        let config = activity::Config::from_env(self.activity_env.vars()).unwrap();
        let topic = format!(
            "{}{}",
            config.events.kafka.topic_prefix,
            event.topic(config.events.kafka.topic_zone)
        );
        let admin =
            events::topics::TopicAdmin::new(&config.events.kafka, config.events.topics).unwrap();
        admin.ensure(std::slice::from_ref(&topic)).await.unwrap();
        test_harness::kafka::produce(
            &config.events.kafka.brokers,
            &topic,
            &format!("post:{}", event.subject_id),
            bytes,
        )
        .await;
    }
}

pub use test_harness::eventually;
