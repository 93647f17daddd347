//! The gateway's path handling from the outside: raw request lines (no client library
//! tidies them first) with every traversal and encoding trick, against every route prefix,
//! with a member's valid token, to a downstream that records everything it receives. Only
//! the canonical path of the route named may ever arrive.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::{Member, gateway};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The default routing table's prefixes (queue's `DEFAULT_ROUTES`).
const PREFIXES: [&str; 8] = [
    "/api/v1/auth",
    "/api/v1/members",
    "/api/v1/posts",
    "/api/v1/comments",
    "/api/v1/timeline",
    "/api/v1/images",
    "/api/v1/search",
    "/api/v1/activities",
];

/// What a service must never be reached at through the gateway.
const TARGETS: [&str; 7] = [
    "internal/posts",
    "internal/follows",
    "internal/members/batch",
    "internal/search/reindex",
    "metrics",
    "health/ready",
    "openapi.json",
];

/// Ways of writing "parent directory".
const DOT_DOTS: [&str; 11] = [
    "..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%252e%252e",
    "%25252e%25252e",
    "%c0%ae%c0%ae",
    "%ef%bc%8e%ef%bc%8e",
    "..;",
    "..%00",
];

/// Ways of writing "/".
const SLASHES: [&str; 8] = ["/", "%2f", "%2F", "\\", "%5c", "%255c", "//", "/./"];

/// One request the recorder received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: String,
    forwarded_for: Option<String>,
}

/// A downstream that answers everything 200 and remembers what it was asked.
struct Recorder {
    base: String,
    seen: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Recorder {
    async fn start() -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let shared = Arc::clone(&seen);
        let server = HttpServer::new(move || {
            let seen = Arc::clone(&shared);
            App::new().default_service(web::to(move |req: HttpRequest| {
                let seen = Arc::clone(&seen);
                async move {
                    let received = Received {
                        method: req.method().to_string(),
                        path: req.uri().path().to_owned(),
                        query: req.uri().query().unwrap_or_default().to_owned(),
                        forwarded_for: req
                            .headers()
                            .get("x-forwarded-for")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    };
                    let body = serde_json::json!({"reached": received.path});
                    seen.lock().unwrap().push(received);
                    HttpResponse::Ok().json(body)
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            seen,
            handle,
        }
    }

    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// Every default prefix routed here.
    fn routes(&self) -> String {
        PREFIXES
            .iter()
            .map(|p| format!("{p}={}", self.base))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A member (for tokens), the recorder, and a gateway routing every prefix to it with
/// `env` on top.
struct Stack {
    member: Member,
    recorder: Recorder,
    gw: service_runtime::RunningService,
    addr: String,
}

impl Stack {
    async fn start(env: &[(&str, &str)]) -> Self {
        let member = Member::start().await;
        let recorder = Recorder::start().await;
        let mut gateway_env = member
            .gateway_env()
            .set("GATEWAY_ROUTES", recorder.routes());
        for (name, value) in env {
            gateway_env = gateway_env.set(name, *value);
        }
        let gw = gateway(&gateway_env).await;
        let addr = format!("127.0.0.1:{}", gw.addr().port());
        Self {
            member,
            recorder,
            gw,
            addr,
        }
    }

    async fn stop(self) {
        self.gw.stop().await;
        self.recorder.stop().await;
        self.member.stop().await;
    }
}

/// Sends `method target` as written (bytes on the wire, nothing normalised) and returns
/// the status and body.
async fn raw(addr: &str, method: &str, target: &[u8], extra: &[(&str, &str)]) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = Vec::new();
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if method == "POST" {
        request.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    } else {
        request.extend_from_slice(b"\r\n");
    }
    socket.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.read_to_end(&mut answer),
    )
    .await;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&answer) {
        Ok(httparse::Status::Complete(body_at)) => (
            response.code.unwrap_or(0),
            String::from_utf8_lossy(&answer[body_at..]).into_owned(),
        ),
        _ => (0, String::from_utf8_lossy(&answer).into_owned()),
    }
}

/// Every spelling of "climb out of this prefix to `target`" this test sends.
fn traversals(prefix: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for target in TARGETS {
        for dots in DOT_DOTS {
            for slash in SLASHES {
                let climb = format!("{slash}{dots}").repeat(5);
                out.push(format!("{prefix}{climb}{slash}{target}").into_bytes());
                // Also from one segment down, and with the prefix's own slash encoded.
                out.push(format!("{prefix}/x{climb}/{target}").into_bytes());
            }
        }
        out.push(format!("{prefix}%2f..%2f..%2f..%2f{target}").into_bytes());
        out.push(format!("{prefix};/../../../{target}").into_bytes());
        out.push(format!("{prefix}/..%2f..%2f..%2f{target}").into_bytes());
    }
    // The prefix itself, spelled otherwise.
    let tail = &prefix["/api/v1/".len()..];
    for spelled in [
        format!("{prefix}/"),
        format!("{prefix}/."),
        format!("{prefix}/.."),
        format!("{prefix}."),
        format!("{prefix};x=1"),
        format!("/api/v1/./{tail}"),
        format!("/api/v1//{tail}"),
        format!("/api//v1/{tail}"),
        format!("/api/v1/{tail}/%2e"),
        format!("/api/v1/%2e/{tail}"),
        format!("/%61pi/v1/{tail}"),
        format!(
            "/api/v1/{}%{:02x}{}",
            &tail[..1],
            tail.as_bytes()[1],
            &tail[2..]
        ),
        format!("{prefix}/1/"),
        format!("{prefix}/1."),
        format!("{prefix}/1%00"),
        format!("{prefix}/1%0d%0aX-Injected:%201"),
    ] {
        out.push(spelled.into_bytes());
    }
    // Raw bytes a client library would never send.
    out.push(
        [
            prefix.as_bytes(),
            b"/\xef\xbc\x8e\xef\xbc\x8e/internal/posts",
        ]
        .concat(),
    );
    out.push([prefix.as_bytes(), b"/..\\..\\..\\internal\\posts"].concat());
    out
}

#[tokio::test]
async fn no_spelling_of_a_path_reaches_anything_but_the_route_it_names() {
    let stack = Stack::start(&[("GATEWAY_RATE_LIMITS", "")]).await;
    let (addr, recorder) = (&stack.addr, &stack.recorder);
    let token = stack.member.token(42).await;
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    // The canonical path of each route arrives exactly as sent: the test can see through.
    for prefix in PREFIXES {
        let target = format!("{prefix}/7/things?probe=1");
        let (status, body) = raw(addr, "GET", target.as_bytes(), &auth).await;
        assert_eq!(status, 200, "{target}: {body}");
        let seen = recorder.take();
        assert_eq!(seen.len(), 1, "{target}");
        assert_eq!(seen[0].path, format!("{prefix}/7/things"));
        assert_eq!(
            (seen[0].method.as_str(), seen[0].query.as_str()),
            ("GET", "probe=1")
        );
    }

    let mut sent = 0;
    for prefix in PREFIXES {
        for (i, target) in traversals(prefix).into_iter().enumerate() {
            // Methods do not change the path check: POST for a sample keeps the run short.
            let methods: &[&str] = if i % 7 == 0 {
                &["GET", "POST"]
            } else {
                &["GET"]
            };
            for &method in methods {
                let (status, body) = raw(addr, method, &target, &auth).await;
                let shown = String::from_utf8_lossy(&target).into_owned();
                let seen = recorder.take();
                assert!(
                    seen.is_empty(),
                    "{method} {shown} reached the service as {seen:?} ({status})"
                );
                // 400 from the edge; 404 for a spelling that is not under `/api/v1` at all
                // (the gateway's own router finds nothing); 414 when too long.
                assert!(
                    matches!(status, 400 | 404 | 414),
                    "{method} {shown}: {status} {body}"
                );
                // Our own refusals carry the JSON error body; actix's parser may refuse
                // the rawest bytes before the edge sees them (still 400, still not sent).
                if let Ok(body) = serde_json::from_str::<Value>(&body) {
                    let expected = match status {
                        404 => "not_found",
                        414 => "path_too_long",
                        _ => "bad_path",
                    };
                    assert_eq!(body["code"], expected, "{method} {shown}: {body}");
                    assert!(body["message"].is_string());
                }
                sent += 1;
            }
        }
    }
    assert!(sent > 2000, "only {sent} variants sent");
    stack.stop().await;
}

#[tokio::test]
async fn login_cannot_be_spelled_around_its_rate_limit() {
    let stack = Stack::start(&[(
        "GATEWAY_RATE_LIMITS",
        "POST /api/v1/auth/login=2/60s@ip, /api/v1/**=1000/60s@member",
    )])
    .await;
    let (addr, recorder) = (stack.addr.as_str(), &stack.recorder);
    for spelled in [
        "/api/v1/auth/./login",
        "/api/v1/auth/login/",
        "/api/v1/auth//login",
        "/api/v1/auth/x/../login",
        "/api/v1/auth/%6cogin",
        "/api/v1/auth/login;",
        "/api/v1/auth/login.",
        "/api/v1/auth/LOGIN/../login",
    ] {
        let (status, body) = raw(addr, "POST", spelled.as_bytes(), &[]).await;
        assert_eq!(status, 400, "{spelled}: {body}");
    }
    assert!(recorder.take().is_empty());
    // The rule still holds on the one spelling that is forwarded.
    for expected in [200, 200, 429] {
        let (status, _) = raw(addr, "POST", b"/api/v1/auth/login", &[]).await;
        assert_eq!(status, expected);
    }
    // Lower-case methods are other methods (RFC 9110), never a way around a rule.
    let (status, body) = raw(addr, "post", b"/api/v1/auth/login", &[]).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(recorder.take().len(), 2);
    stack.stop().await;
}

#[tokio::test]
async fn trace_connect_and_extension_methods_are_not_forwarded() {
    let stack = Stack::start(&[]).await;
    let (addr, recorder) = (stack.addr.as_str(), &stack.recorder);
    for method in ["TRACE", "get", "PROPFIND", "FOO"] {
        let (status, body) = raw(addr, method, b"/api/v1/posts/1", &[]).await;
        assert_eq!(status, 405, "{method}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "method_not_allowed");
    }
    // HEAD on a public GET route is public too.
    let (status, _) = raw(addr, "HEAD", b"/api/v1/posts/1", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(recorder.take().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn only_forwarded_for_entries_from_trusted_proxies_are_believed_or_passed_on() {
    let stack = Stack::start(&[
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("GATEWAY_RATE_LIMITS", "GET /api/v1/posts/**=2/60s@ip"),
    ])
    .await;
    let (addr, recorder) = (stack.addr.as_str(), &stack.recorder);
    // A trusted proxy on loopback appended 203.0.113.7; the client wrote the rest.
    let spoofed = |first: &'static str| [("X-Forwarded-For", first)];
    let (status, _) = raw(
        addr,
        "GET",
        b"/api/v1/posts/1",
        &spoofed("6.6.6.6, 203.0.113.7"),
    )
    .await;
    assert_eq!(status, 200);
    let seen = recorder.take();
    assert_eq!(
        seen[0].forwarded_for.as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    // Changing what the client wrote does not give it a new rate-limit bucket.
    let (status, _) = raw(
        addr,
        "GET",
        b"/api/v1/posts/1",
        &spoofed("7.7.7.7, 203.0.113.7"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = raw(
        addr,
        "GET",
        b"/api/v1/posts/1",
        &spoofed("8.8.8.8, 203.0.113.7"),
    )
    .await;
    assert_eq!(status, 429);
    // Another client behind the same proxy has its own.
    let (status, _) = raw(addr, "GET", b"/api/v1/posts/1", &spoofed("203.0.113.8")).await;
    assert_eq!(status, 200);
    stack.stop().await;
}
