//! The gateway with a real member beside it (JWKS, blacklist) on the test servers, an SSE
//! reader, and a small echo service to look at what the gateway forwards.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use contracts::auth::{AccessClaims, MemberRole, TokenType};
use futures_util::StreamExt;
use member::domain::keys::KeyRing;
use serde_json::Value;
use service_runtime::{HttpSettings, RunningService, ServiceBuilder, ServiceName};
use test_harness::TestEnv;

/// A running member (the JWKS the gateway verifies against) and its signing keys.
pub struct Member {
    pub service: RunningService,
    pub env: TestEnv,
    keys: Arc<KeyRing>,
}

impl Member {
    pub async fn start() -> Self {
        test_harness::install_crypto_provider();
        let env = TestEnv::new().postgres().await.redis().kafka();
        let config = member::Config::from_env(env.vars()).unwrap();
        let db = service_runtime::postgres::connect_lazy(&config.database).unwrap();
        let keys = Arc::new(KeyRing::new(
            db,
            &config.tokens.master_key,
            config.tokens.access_ttl,
            config.tokens.rotation,
        ));
        let service = member::start(config).await.unwrap();
        Self { service, env, keys }
    }

    /// The Redis prefix member writes its blacklist under (the gateway must share it).
    pub fn prefix(&self) -> &str {
        self.env.get("REDIS_KEY_PREFIX").unwrap()
    }

    /// Gateway settings pointed at this member, sharing its Redis namespace, with fast
    /// waiting-room timers.
    pub fn gateway_env(&self) -> TestEnv {
        TestEnv::new()
            .redis()
            .set("REDIS_KEY_PREFIX", self.prefix())
            .set("MEMBER_URL", self.service.base_url())
            .set("SERVER_WORKERS", "2")
            .set("QUEUE_SCHEDULER_INTERVAL_MS", "100")
            .set("QUEUE_SSE_POSITION_INTERVAL_MS", "200")
            .set("QUEUE_SSE_HEARTBEAT_INTERVAL_MS", "300")
    }

    pub async fn token_with(&self, member_id: i64, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.keys
            .sign(&AccessClaims {
                sub: member_id.to_string(),
                jti: uuid::Uuid::now_v7().to_string(),
                iat: now,
                exp: now + exp_in,
                typ: TokenType::Access,
                role: MemberRole::User,
                epoch: 0,
            })
            .await
            .unwrap()
    }

    /// A valid access token for `member_id`, signed by member's active key.
    pub async fn token(&self, member_id: i64) -> String {
        self.token_with(member_id, 600).await
    }

    /// A valid access token for `member_id` with the ADMIN role.
    pub async fn admin_token(&self, member_id: i64) -> String {
        self.keys
            .access_token(member_id, MemberRole::Admin, Duration::from_secs(600))
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.service.stop().await;
    }
}

pub async fn gateway(env: &TestEnv) -> RunningService {
    queue::start(queue::Config::from_env(env.vars()).unwrap())
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    test_harness::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub async fn call(method: reqwest::Method, url: String, token: Option<&str>) -> reqwest::Response {
    let mut req = client().request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

pub async fn lineup(base: &str, token: &str) -> Value {
    let res = call(
        reqwest::Method::POST,
        format!("{base}/api/v1/queue/lineup"),
        Some(token),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn status(base: &str, token: &str) -> Value {
    let res = call(
        reqwest::Method::GET,
        format!("{base}/api/v1/queue/status"),
        Some(token),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A redis connection to the test server, for looking at the waiting room's keys.
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// Reads server-sent events from a streaming response.
pub struct Sse {
    stream: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Send>,
    >,
    buf: String,
}

impl Sse {
    pub async fn open(base: &str, token: &str) -> Self {
        let res = reqwest::Client::new()
            .get(format!("{base}/api/v1/queue/stream"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            stream: Box::pin(res.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event (comments and `retry:` lines skipped), or `None` at the end of the
    /// stream or after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let Some(name) = name {
                    return Some(Event {
                        name,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.name == name {
                return Some(event);
            }
        }
    }
}

/// A downstream that shows what reached it: `/api/v1/echo/headers` answers with the request
/// headers, `/slow` sleeps, `/drip` sends two chunks a second apart, `/upload` counts the
/// bytes of the body as they stream in.
pub async fn echo_service() -> RunningService {
    let env = TestEnv::new();
    let http = HttpSettings::from_env(env.vars(), ServiceName::Image).unwrap();
    ServiceBuilder::new(ServiceName::Image, http)
        .start(|cfg| {
            cfg.route("/api/v1/echo/headers", web::route().to(echo_headers))
                .route("/api/v1/echo/slow", web::get().to(slow))
                .route("/api/v1/echo/drip", web::get().to(drip))
                .route("/api/v1/echo/upload", web::post().to(upload));
        })
        .await
        .unwrap()
}

async fn echo_headers(req: HttpRequest) -> HttpResponse {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let entry = headers
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(values) = entry {
            values.push(Value::String(value.to_str().unwrap_or("").to_owned()));
        }
    }
    HttpResponse::Ok().json(serde_json::json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "headers": headers,
    }))
}

async fn slow() -> HttpResponse {
    tokio::time::sleep(Duration::from_secs(5)).await;
    HttpResponse::Ok().finish()
}

async fn drip() -> HttpResponse {
    let chunks = futures_util::stream::unfold(0u8, |n| async move {
        match n {
            0 => Some((
                Ok::<_, std::convert::Infallible>(web::Bytes::from_static(b"first;")),
                1,
            )),
            1 => {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                Some((Ok(web::Bytes::from_static(b"second")), 2))
            }
            _ => None,
        }
    });
    HttpResponse::Ok()
        .content_type("text/plain")
        .streaming(chunks)
}

async fn upload(mut body: web::Payload) -> HttpResponse {
    let mut bytes = 0usize;
    let mut chunks = 0usize;
    let mut sum = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        chunks += 1;
        sum = chunk.iter().fold(sum, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u64::from(*b))
        });
    }
    HttpResponse::Ok().json(serde_json::json!({"bytes": bytes, "chunks": chunks, "sum": sum}))
}
