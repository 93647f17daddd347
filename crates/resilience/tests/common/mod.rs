//! A real HTTP downstream for the tests: an actix-web server on 127.0.0.1:0 that answers
//! from a script (statuses, delays) and records every request it receives, so tests can
//! count exactly what reached the network.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use resilience::{
    BreakerSettings, ClientSettings, RateLimitSettings, ResilientClient, RetrySettings, Tier,
};
use url::Url;

/// One answer: a status, after an optional delay.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
        }
    }

    pub fn after(delay: Duration, status: u16) -> Self {
        Self { status, delay }
    }
}

/// A request as the downstream saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    otherwise: Option<Reply>,
    hits: Vec<Hit>,
}

type Shared = Arc<Mutex<Script>>;

pub struct Downstream {
    pub url: Url,
    script: Shared,
    handle: ServerHandle,
}

impl Downstream {
    /// A server answering `otherwise` to every request not taken by a queued reply.
    pub async fn start(otherwise: Reply) -> Self {
        let script: Shared = Arc::new(Mutex::new(Script {
            otherwise: Some(otherwise),
            ..Script::default()
        }));
        let data = web::Data::new(script.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            script,
            handle,
        }
    }

    /// The next requests get these answers, in order, before falling back.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().queue.extend(replies);
    }

    /// From now on, answer this (queued replies first).
    pub fn answer(&self, reply: Reply) {
        self.script.lock().unwrap().otherwise = Some(reply);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }

    pub fn hit_count(&self) -> usize {
        self.script.lock().unwrap().hits.len()
    }
}

impl Drop for Downstream {
    fn drop(&mut self) {
        // The stop command is sent at once; awaiting it is not needed.
        std::mem::drop(self.handle.stop(false));
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, script: web::Data<Shared>) -> HttpResponse {
    let (reply, n) = {
        let mut script = script.lock().unwrap();
        script.hits.push(Hit {
            method: req.method().to_string(),
            path: req.uri().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        let reply = script
            .queue
            .pop_front()
            .or(script.otherwise)
            .unwrap_or(Reply::status(200));
        (reply, script.hits.len())
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    HttpResponse::build(StatusCode::from_u16(reply.status).unwrap()).body(format!("answer {n}"))
}

/// A local port nothing listens on (bound, then released): connecting is refused.
pub fn closed_port_url() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap()
}

/// Millisecond-scale settings with nothing in the way: retries without jitter, a breaker
/// that never sees enough calls to judge, a rate limit nobody reaches. Tests change the
/// part they exercise.
pub fn quick_settings() -> ClientSettings {
    ClientSettings {
        tier: Tier::Default,
        timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(10),
        retry: RetrySettings {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(500),
            jitter: 0.0,
        },
        breaker: BreakerSettings {
            window_size: 1000,
            minimum_calls: 1000,
            failure_rate_threshold: 50,
            slow_call_rate_threshold: 100,
            slow_call_duration: Duration::from_secs(60),
            wait_in_open: Duration::from_secs(60),
            half_open_calls: 1,
        },
        rate_limit: RateLimitSettings {
            limit_for_period: 100_000,
            refresh_period: Duration::from_secs(1),
            max_wait: Duration::ZERO,
        },
    }
}

pub fn client(name: &str, url: &Url, settings: ClientSettings) -> ResilientClient {
    ResilientClient::new(name, url.clone(), settings).unwrap()
}
