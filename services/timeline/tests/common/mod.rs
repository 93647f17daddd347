//! timeline with real member and content services beside it, on the test servers. member
//! listens on a fixed port so a test can stop it and bring it back.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_runtime::RunningService;
use test_harness::TestEnv;

pub struct Stack {
    pub member: Option<RunningService>,
    pub content: RunningService,
    pub timeline: Option<RunningService>,
    pub member_env: TestEnv,
    pub content_env: TestEnv,
    pub timeline_env: TestEnv,
    pub client: reqwest::Client,
}

pub async fn spawn(timeline_overrides: &[(&str, &str)]) -> Stack {
    test_harness::install_crypto_provider();
    let member_port = test_harness::closed_port();
    let member_env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("SERVER_PORT", member_port.to_string())
        // Fast registrations: these tests are not about password hashing.
        .set("ARGON2_MEMORY_KIB", "1024")
        .set("ARGON2_ITERATIONS", "1");
    let member = member::start(member::Config::from_env(member_env.vars()).unwrap())
        .await
        .unwrap();
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
    let mut timeline_env = shared(TestEnv::new().postgres().await.redis().kafka())
        .set("CONTENT_URL", content.base_url())
        .set("KAFKA_METADATA_REFRESH_MS", "500")
        .set("CONSUMER_BACKOFF_MAX_MS", "1000");
    for (k, v) in timeline_overrides {
        timeline_env = timeline_env.set(k, *v);
    }
    let timeline = timeline::start(timeline::Config::from_env(timeline_env.vars()).unwrap())
        .await
        .unwrap();
    Stack {
        member: Some(member),
        content,
        timeline: Some(timeline),
        member_env,
        content_env,
        timeline_env,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    }
}

impl Stack {
    pub fn member_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.member_env.get("SERVER_PORT").unwrap()
        )
    }

    pub fn timeline_url(&self) -> String {
        self.timeline.as_ref().unwrap().base_url()
    }

    pub async fn stop_member(&mut self) {
        if let Some(member) = self.member.take() {
            member.stop().await;
        }
    }

    pub async fn start_member(&mut self) {
        let config = member::Config::from_env(self.member_env.vars()).unwrap();
        self.member = Some(member::start(config).await.unwrap());
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

    /// Registers and logs in a member; returns its id and access token.
    pub async fn member(&self, nickname: &str) -> (i64, String) {
        test_harness::api::register_and_login(&self.client, &self.member_url(), nickname).await
    }

    pub async fn follow(&self, token: &str, target: i64, on: bool) {
        let method = if on { Method::POST } else { Method::DELETE };
        let url = format!("{}/api/v1/members/{target}/follow", self.member_url());
        let (status, body) = self.call(method, &url, Some(token), None).await;
        assert!(status.is_success(), "{status} {body}");
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

    pub async fn post(&self, token: &str, title: &str) -> i64 {
        let body = self
            .content(
                Method::POST,
                "/api/v1/posts",
                token,
                Some(json!({"title": title, "body": format!("{title} body")})),
            )
            .await;
        body["id"].as_i64().unwrap()
    }

    /// `GET {timeline}{path}`: status, headers, body.
    pub async fn feed(
        &self,
        path: &str,
        token: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.timeline_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }

    /// Post ids on the first page at `path`.
    pub async fn ids(&self, path: &str, token: &str) -> Vec<i64> {
        let (status, _, body) = self.feed(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        ids_of(&body)
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.timeline_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub fn ids_of(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["post_id"].as_i64().unwrap())
        .collect()
}

pub use test_harness::eventually;
