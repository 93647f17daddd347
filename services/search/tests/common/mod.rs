//! search with real member and content services beside it, on the test servers; every
//! search instance gets its own index directory.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_runtime::RunningService;
use test_harness::TestEnv;

pub struct Stack {
    pub member: RunningService,
    pub content: RunningService,
    pub search: Option<RunningService>,
    pub search_env: TestEnv,
    pub index_dir: PathBuf,
    pub client: reqwest::Client,
    pub token: String,
    pub member_id: i64,
    /// An ADMIN's access token, for `/admin/**`.
    pub admin_token: String,
}

pub fn index_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "dailyfeed-search-test-{}",
        test_harness::unique_suffix()
    ))
}

/// member + content + (unless `start_search` is false) search sharing one topic prefix.
pub async fn spawn(overrides: &[(&str, &str)], start_search: bool) -> Stack {
    test_harness::install_crypto_provider();
    let member_env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("ARGON2_MEMORY_KIB", "1024")
        .set("ARGON2_ITERATIONS", "1");
    let member_config = member::Config::from_env(member_env.vars()).unwrap();
    let keys = member::domain::keys::KeyRing::new(
        service_runtime::postgres::connect_lazy(&member_config.database).unwrap(),
        &member_config.tokens.master_key,
        member_config.tokens.access_ttl,
        member_config.tokens.rotation,
    );
    let member = member::start(member_config).await.unwrap();
    let admin_token = keys
        .access_token(
            1,
            contracts::auth::MemberRole::Admin,
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let prefix = member_env.get("KAFKA_TOPIC_PREFIX").unwrap().to_owned();
    let redis_prefix = member_env.get("REDIS_KEY_PREFIX").unwrap().to_owned();
    let content_env = TestEnv::new()
        .postgres()
        .await
        .redis()
        .kafka()
        .set("KAFKA_TOPIC_PREFIX", &prefix)
        .set("REDIS_KEY_PREFIX", &redis_prefix)
        .set("MEMBER_URL", member.base_url())
        .set("OUTBOX_POLL_INTERVAL_MS", "20");
    let content = content::start(content::Config::from_env(content_env.vars()).unwrap())
        .await
        .unwrap();
    let index_dir = index_dir();
    let mut search_env = TestEnv::new()
        .redis()
        .kafka()
        .set("KAFKA_TOPIC_PREFIX", &prefix)
        .set("REDIS_KEY_PREFIX", &redis_prefix)
        .set("CONTENT_URL", content.base_url())
        .set("MEMBER_URL", member.base_url())
        .set("SEARCH_INDEX_DIR", index_dir.to_string_lossy())
        .set("SEARCH_WRITER_MEMORY_MB", "32")
        .set("KAFKA_METADATA_REFRESH_MS", "300")
        .set("KAFKA_FETCH_WAIT_MAX_MS", "20")
        .set("CONSUMER_BACKOFF_MAX_MS", "1000");
    for (k, v) in overrides {
        search_env = search_env.set(k, *v);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut stack = Stack {
        member,
        content,
        search: None,
        search_env,
        index_dir,
        client,
        token: String::new(),
        member_id: 0,
        admin_token,
    };
    let (id, token) =
        test_harness::api::register_and_login(&stack.client, &stack.member.base_url(), "writer")
            .await;
    stack.member_id = id;
    stack.token = token;
    if start_search {
        stack.start_search().await;
    }
    stack
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.index_dir);
    }
}

impl Stack {
    pub async fn start_search(&mut self) {
        let config = search::Config::from_env(self.search_env.vars()).unwrap();
        self.search = Some(search::start(config).await.unwrap());
    }

    pub async fn stop_search(&mut self) {
        if let Some(search) = self.search.take() {
            search.stop().await;
        }
    }

    pub fn search_url(&self) -> String {
        self.search.as_ref().unwrap().base_url()
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

    /// Creates a post; returns its id.
    pub async fn post(&self, title: &str, body: &str) -> i64 {
        let url = format!("{}/api/v1/posts", self.content.base_url());
        let (status, res) = self
            .call(
                Method::POST,
                &url,
                Some(&self.token),
                Some(json!({"title": title, "body": body})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{res}");
        res["id"].as_i64().unwrap()
    }

    pub async fn edit(&self, id: i64, title: &str, body: &str) {
        let url = format!("{}/api/v1/posts/{id}", self.content.base_url());
        let (status, res) = self
            .call(
                Method::PATCH,
                &url,
                Some(&self.token),
                Some(json!({"title": title, "body": body})),
            )
            .await;
        assert!(status.is_success(), "{status} {res}");
    }

    pub async fn delete(&self, id: i64) {
        let url = format!("{}/api/v1/posts/{id}", self.content.base_url());
        let (status, res) = self
            .call(Method::DELETE, &url, Some(&self.token), None)
            .await;
        assert!(status.is_success(), "{status} {res}");
    }

    /// `GET /api/v1/search/posts?{query}`: status and body.
    pub async fn search_raw(&self, query: &str) -> (StatusCode, Value) {
        let url = format!("{}/api/v1/search/posts?{query}", self.search_url());
        self.call(Method::GET, &url, None, None).await
    }

    /// Post ids found for `q` (first page of up to 100), asserting 200.
    pub async fn find(&self, q: &str) -> Vec<i64> {
        let query = format!("q={}&limit=100", urlencode(q));
        let (status, body) = self.search_raw(&query).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        ids(&body)
    }

    /// Waits until `q` finds exactly `expected` (in any order).
    pub async fn eventually_finds(&self, q: &str, expected: &[i64]) {
        let mut want = expected.to_vec();
        want.sort_unstable();
        test_harness::eventually(&format!("{q:?} to find {want:?}"), 20, || async {
            let mut got = self.find(q).await;
            got.sort_unstable();
            (got == want).then_some(())
        })
        .await;
    }
}

pub fn ids(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["post_id"].as_i64()).collect())
        .unwrap_or_default()
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
