//! A lean listener for one route, `GET /api/v1/queue/stream`, on `QUEUE_STREAM_PORT`.
//!
//! Waiters hold their stream for minutes, so per-connection memory decides how many one
//! replica can hold. actix-http keeps an 8 KiB read and an 8 KiB write buffer for every
//! connection for its whole life; here the request head is read into a small buffer that is
//! dropped once parsed, and the stream is a task owning the socket, the hub's channel and
//! nothing else. The checks are the edge's own ([`edge::authenticate`], [`edge::rate_limit`];
//! client headers cannot inject identity because nothing is forwarded), the events the
//! same hub's. The response is `Connection: close`-delimited (no chunking): one stream per
//! connection, as EventSource opens it.
//!
//! In a cluster, the mesh routes the stream path to this port (Helm `queue.streamPort`); the
//! main listener keeps serving the route too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web;
use service_runtime::HttpError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::api::queue::open_stream;
use crate::error::QueueError;
use crate::gateway::Gateway;
use crate::gateway::edge::{self, Caller};
use crate::hub::Hub;

/// The one path served here.
pub const STREAM_PATH: &str = "/api/v1/queue/stream";
/// Longest request head accepted (431 beyond).
const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 48;
/// A client must send its request head within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
connection: close\r\n\r\n";

struct Listener {
    gateway: web::Data<Gateway>,
    hub: Hub,
    shutdown: CancellationToken,
}

/// Serves streams on `listener` until `shutdown`; open streams end then too (clients
/// reconnect after the `retry` the stream announced).
pub async fn serve(
    listener: TcpListener,
    gateway: web::Data<Gateway>,
    hub: Hub,
    shutdown: CancellationToken,
) {
    let this = Arc::new(Listener {
        gateway,
        hub,
        shutdown,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "stream listener up");
    }
    loop {
        let accepted = tokio::select! {
            _ = this.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                tokio::spawn(Arc::clone(&this).connection(socket, peer));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %err, "stream listener cannot accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What the request head said, as far as this route cares.
struct Head {
    method: String,
    path: String,
    headers: HeaderMap,
}

enum HeadError {
    /// The client went away or sent nothing in time: nothing to answer.
    Gone,
    Bad(HttpError),
}

impl Listener {
    async fn connection(self: Arc<Self>, mut socket: TcpStream, peer: SocketAddr) {
        // Boxed: the head's buffers and the checks' futures are freed once done instead of
        // sizing the task that lives as long as the stream.
        let head = match tokio::time::timeout(HEAD_TIMEOUT, Box::pin(read_head(&mut socket))).await
        {
            Ok(Ok(head)) => head,
            Ok(Err(HeadError::Bad(err))) => return write_error(&mut socket, &err).await,
            Ok(Err(HeadError::Gone)) | Err(_) => return,
        };
        let stream = match Box::pin(self.admit(&head, peer.ip())).await {
            Ok(stream) => stream,
            Err(err) => return write_error(&mut socket, &err).await,
        };
        drop(head);
        self.pump(socket, stream).await;
    }

    /// The edge's checks, then the stream's first frames.
    async fn admit(
        &self,
        head: &Head,
        peer: IpAddr,
    ) -> Result<crate::api::queue::OpenStream, HttpError> {
        let path = head.path.split('?').next().unwrap_or_default();
        if path != STREAM_PATH {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                crate::error::codes::NO_ROUTE,
                format!("this port serves GET {STREAM_PATH} only"),
            ));
        }
        if head.method != "GET" {
            return Err(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{STREAM_PATH} answers GET only"),
            )
            .with_header("Allow", "GET"));
        }
        let gw = &self.gateway;
        let member = edge::authenticate(gw, &head.headers, false)
            .await?
            .ok_or_else(|| HttpError::from(auth::AuthError::Missing))?;
        let caller = Caller {
            member_id: member.member_id,
            role: member.role,
        };
        let ip = || {
            gw.settings
                .trusted_proxies
                .client_ip(&head.headers, Some(peer))
        };
        edge::rate_limit(gw, "GET", path, ip, Some(caller)).await?;
        open_stream(&gw.room, &self.hub, caller.member_id)
            .await
            .map_err(|e| {
                if let QueueError::Store(err) = &e {
                    tracing::error!(error = format!("{err:#}"), "waiting room store failed");
                }
                e.to_http()
            })
    }

    /// Writes frames as the hub sends them until the stream's last frame, the client going
    /// away, or shutdown.
    async fn pump(&self, socket: TcpStream, mut stream: crate::api::queue::OpenStream) {
        let (mut reader, mut writer) = socket.into_split();
        if writer.write_all(STREAM_HEAD).await.is_err() {
            return;
        }
        while let Some(frame) = stream.first.pop_front() {
            if writer.write_all(&frame.bytes).await.is_err() || frame.last {
                return;
            }
        }
        // A client sends nothing more on a stream; a read only tells when it has gone.
        let mut probe = [0_u8; 64];
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                frame = stream.rx.recv() => {
                    let Some(frame) = frame else { break };
                    if writer.write_all(&frame.bytes).await.is_err() || frame.last {
                        break;
                    }
                }
                read = reader.read(&mut probe) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        break;
                    }
                }
            }
        }
        let _ = writer.shutdown().await;
    }
}

async fn read_head(socket: &mut TcpStream) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0_u8; 1024];
        let n = socket.read(&mut chunk).await.map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let mut map = HeaderMap::new();
                for h in request.headers.iter() {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(h.name.as_bytes()),
                        HeaderValue::from_bytes(h.value),
                    ) {
                        map.append(name, value);
                    }
                }
                return Ok(Head {
                    method: request.method.unwrap_or_default().to_owned(),
                    path: request.path.unwrap_or_default().to_owned(),
                    headers: map,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::Bad(HttpError::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "headers_too_large",
                    format!(
                        "the request head must fit in {MAX_HEAD} bytes and {MAX_HEADERS} lines"
                    ),
                )));
            }
            Err(err) => {
                return Err(HeadError::Bad(HttpError::bad_request(format!(
                    "malformed HTTP request: {err}"
                ))));
            }
        }
    }
}

/// The shared JSON error body, as the main listener would send it.
async fn write_error(socket: &mut TcpStream, err: &HttpError) {
    let body = serde_json::to_vec(&err.body).unwrap_or_else(|_| b"{}".to_vec());
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        err.status.as_u16(),
        err.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    for (name, value) in &err.headers {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(&body).await;
    let _ = socket.shutdown().await;
    // Lingering close: take what the client is still sending, so closing with unread data
    // does not reset the connection and lose the answer.
    let mut sink = [0_u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut taken = 0;
        while let Ok(n) = socket.read(&mut sink).await {
            taken += n;
            if n == 0 || taken > 64 * 1024 {
                break;
            }
        }
    })
    .await;
}
