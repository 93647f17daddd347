//! The waiting room's endpoints (seed 002): line up, poll, stream, leave, and the admission
//! token's public key.

use std::collections::VecDeque;
use std::convert::Infallible;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use ratelimit::Decision;
use serde::Serialize;
use service_runtime::HttpError;
use utoipa::ToSchema;

use crate::domain::estimate::estimated_wait_seconds;
use crate::error::QueueError;
use crate::gateway::Gateway;
use crate::gateway::edge::{self, DeferredLimit};
use crate::hub::{Frame, Hub, Subscription};
use crate::store::room::{Leave, Lineup, Standing, WaitingRoom};

/// Where the caller stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatus {
    /// `ADMITTED`, `WAITING` or `NOT_IN_QUEUE`.
    #[schema(example = "WAITING")]
    pub status: &'static str,
    /// 1-based place in the queue while waiting.
    pub position: Option<u64>,
    /// How many are waiting in all.
    pub waiting_count: Option<u64>,
    /// From the rate of admissions over the recent window; `null` until there is one.
    pub estimated_wait_seconds: Option<u64>,
    /// True when this lineup moved an already waiting member to the back (refresh
    /// protection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeued: Option<bool>,
    /// Signed, short-lived proof of admission (EdDSA JWT; keys at /api/v1/queue/jwks.json).
    pub admission_token: Option<String>,
    pub admission_token_expires_at: Option<i64>,
    /// How long an admission lasts without activity.
    pub allowed_in_seconds: Option<u64>,
}

impl QueueStatus {
    fn empty(status: &'static str) -> Self {
        Self {
            status,
            position: None,
            waiting_count: None,
            estimated_wait_seconds: None,
            requeued: None,
            admission_token: None,
            admission_token_expires_at: None,
            allowed_in_seconds: None,
        }
    }

    fn admitted(hub: &Hub, member: i64) -> Result<Self, QueueError> {
        let event = hub.admitted_event(member).map_err(QueueError::Store)?;
        Ok(Self {
            admission_token: Some(event.admission_token),
            admission_token_expires_at: Some(event.admission_token_expires_at),
            allowed_in_seconds: Some(event.allowed_in_seconds),
            ..Self::empty("ADMITTED")
        })
    }
}

/// What leaving did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaveResult {
    /// Whether the caller was in the set they left.
    pub removed: bool,
    /// How many waiting members were admitted into the freed slot(s).
    pub admitted_from_queue: u64,
}

/// Joins the waiting room: admitted at once while there is room, otherwise queued at the
/// back. Already admitted: stays admitted (never re-queued). Already waiting: moved to the
/// back.
#[utoipa::path(post, path = "/api/v1/queue/lineup", tag = "queue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Admitted or queued", body = QueueStatus),
        (status = 401, description = "No valid access token", body = contracts::ErrorBody),
        (status = 429, description = "Rate limited", body = contracts::ErrorBody),
        (status = 503, description = "Waiting room unavailable", body = contracts::ErrorBody)))]
pub async fn lineup(
    req: HttpRequest,
    room: web::Data<WaitingRoom>,
    hub: web::Data<Hub>,
    gw: web::Data<Gateway>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = edge::caller(&req)?;
    // The edge left this route's rate limit to the lineup script (same round trip).
    let deferred = req.extensions_mut().remove::<DeferredLimit>();
    let (outcome, remaining) = room
        .lineup(caller.member_id, deferred.as_ref().map(|d| &d.hit))
        .await
        .map_err(QueueError::Store)?;
    let limit = match (&deferred, outcome, remaining) {
        (Some(d), Lineup::RateLimited { retry_after }, _) => {
            edge::verdict(&gw, d.rule, Decision::Limited { retry_after })?
        }
        (Some(d), _, Some(remaining)) => {
            edge::verdict(&gw, d.rule, Decision::Allowed { remaining })?
        }
        _ => None,
    };
    let body = match outcome {
        Lineup::Admitted { already } => {
            let result = if already {
                "already_admitted"
            } else {
                "admitted"
            };
            metrics::counter!("queue_lineups_total", "result" => result).increment(1);
            QueueStatus::admitted(&hub, caller.member_id)?
        }
        Lineup::Waiting { position, requeued } => {
            let result = if requeued { "requeued" } else { "waiting" };
            metrics::counter!("queue_lineups_total", "result" => result).increment(1);
            QueueStatus {
                position: Some(position),
                waiting_count: Some(position),
                requeued: Some(requeued),
                ..QueueStatus::empty("WAITING")
            }
        }
        // Only a counted limit refuses, and that answered above.
        Lineup::RateLimited { .. } => {
            return Err(
                HttpError::internal(&"a lineup was refused by a limit it did not count").into(),
            );
        }
    };
    let mut res = HttpResponse::Ok().json(body);
    if let Some(limit) = limit {
        edge::limit_headers(res.headers_mut(), limit);
    }
    Ok(res)
}

/// The caller's standing (the seed's polling endpoint; SSE is preferred). Polling counts as a
/// sign of life for abandonment.
#[utoipa::path(get, path = "/api/v1/queue/status", tag = "queue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where the caller stands", body = QueueStatus),
        (status = 401, description = "No valid access token", body = contracts::ErrorBody)))]
pub async fn status(
    req: HttpRequest,
    room: web::Data<WaitingRoom>,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = edge::caller(&req)?;
    let standings = room
        .standings(&[caller.member_id])
        .await
        .map_err(QueueError::Store)?;
    let body = match standings
        .members
        .first()
        .copied()
        .unwrap_or(Standing::Absent)
    {
        Standing::Admitted => QueueStatus::admitted(&hub, caller.member_id)?,
        Standing::Waiting { position } => QueueStatus {
            position: Some(position),
            waiting_count: Some(standings.waiting_total),
            estimated_wait_seconds: estimated_wait_seconds(
                position,
                standings.admitted_in_window,
                room.settings().rate_window,
            ),
            ..QueueStatus::empty("WAITING")
        },
        Standing::Absent => QueueStatus::empty("NOT_IN_QUEUE"),
    };
    Ok(HttpResponse::Ok().json(body))
}

async fn leave(
    req: HttpRequest,
    room: web::Data<WaitingRoom>,
    which: Leave,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = edge::caller(&req)?;
    let left = room
        .leave(caller.member_id, which)
        .await
        .map_err(QueueError::Store)?;
    metrics::counter!("queue_admitted_total", "via" => "leave").increment(left.admitted_from_queue);
    Ok(HttpResponse::Ok().json(LeaveResult {
        removed: left.allowed || left.waiting,
        admitted_from_queue: left.admitted_from_queue,
    }))
}

/// Gives up an admission (closing the page, done): the slot goes to the head of the queue.
#[utoipa::path(delete, path = "/api/v1/queue/allowed-in-token", tag = "queue",
    security(("bearer" = [])),
    responses((status = 200, description = "Left the admitted set", body = LeaveResult)))]
pub async fn leave_allowed(
    req: HttpRequest,
    room: web::Data<WaitingRoom>,
) -> Result<HttpResponse, actix_web::Error> {
    leave(req, room, Leave::Allowed).await
}

/// Leaves the queue.
#[utoipa::path(delete, path = "/api/v1/queue/waiting-token", tag = "queue",
    security(("bearer" = [])),
    responses((status = 200, description = "Left the queue", body = LeaveResult)))]
pub async fn leave_waiting(
    req: HttpRequest,
    room: web::Data<WaitingRoom>,
) -> Result<HttpResponse, actix_web::Error> {
    leave(req, room, Leave::Waiting).await
}

/// A stream that has its first frames: what both listeners (this handler and the lean
/// [`crate::stream_listener`]) write out.
pub struct OpenStream {
    /// `retry` and the current standing, before anything from the hub.
    pub first: VecDeque<Frame>,
    pub rx: tokio::sync::mpsc::Receiver<Frame>,
    /// Unregisters the stream from the hub when dropped (the client went away).
    pub subscription: Subscription,
}

/// Registers a stream for `member` and reads where they stand: 404 when not in the queue.
pub async fn open_stream(
    room: &WaitingRoom,
    hub: &Hub,
    member: i64,
) -> Result<OpenStream, QueueError> {
    // Subscribe before looking, so an admission between the two cannot be missed.
    let (subscription, rx) = hub.subscribe(member);
    let standings = room.standings(&[member]).await.map_err(QueueError::Store)?;
    let first = match standings
        .members
        .first()
        .copied()
        .unwrap_or(Standing::Absent)
    {
        Standing::Waiting { position } => hub.position_frame(
            position,
            standings.waiting_total,
            standings.admitted_in_window,
        ),
        Standing::Admitted => hub.admitted_frame(member).map_err(QueueError::Store)?,
        Standing::Absent => return Err(QueueError::NotInQueue),
    };
    metrics::counter!("queue_sse_streams_total").increment(1);
    Ok(OpenStream {
        first: VecDeque::from([Hub::retry_frame(), first]),
        rx,
        subscription,
    })
}

struct StreamState {
    open: OpenStream,
    done: bool,
}

/// Server-sent events for a member who lined up: `position` at once and every
/// `QUEUE_SSE_POSITION_INTERVAL_MS`, `heartbeat` every `QUEUE_SSE_HEARTBEAT_INTERVAL_MS`,
/// and `admitted` (with the admission token) the moment it happens on any replica, after
/// which the stream ends. Formats in docs/queue.md. `QUEUE_STREAM_PORT` serves the same
/// stream from a lean listener (far less memory per connection).
#[utoipa::path(get, path = "/api/v1/queue/stream", tag = "queue",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 404, description = "Not in the queue: line up first", body = contracts::ErrorBody)))]
pub async fn stream(
    req: HttpRequest,
    room: web::Data<WaitingRoom>,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = edge::caller(&req)?;
    let open = open_stream(&room, &hub, caller.member_id).await?;
    let state = StreamState { open, done: false };
    let body = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let frame = match st.open.first.pop_front() {
            Some(frame) => frame,
            None => st.open.rx.recv().await?,
        };
        st.done = frame.last;
        Some((Ok::<_, Infallible>(frame.bytes), st))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The public key admission tokens are signed with (JWKS), for services that verify them.
#[utoipa::path(get, path = "/api/v1/queue/jwks.json", tag = "queue",
    responses((status = 200, description = "JSON Web Key Set")))]
pub async fn jwks(signer: web::Data<crate::domain::admission::AdmissionSigner>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(signer.jwks())
}
