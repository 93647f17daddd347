//! The SSE side of the waiting room: every stream connected to this replica, and the three
//! things that write to them.
//!
//! - **Admission** is pushed the moment it happens, wherever it happens: the Lua scripts
//!   `PUBLISH` admitted ids on the admissions channel in the same step that admits them, and
//!   every replica's [`Hub::listen`] delivers the event to its own streams.
//! - **Position** every `QUEUE_SSE_POSITION_INTERVAL_MS`: one batched script asks where all
//!   of this replica's waiting members stand (which also counts as their sign of life for
//!   abandonment) and catches up anyone whose admission message was missed.
//! - **Heartbeat** every `QUEUE_SSE_HEARTBEAT_INTERVAL_MS`, so proxies keep the connection.
//!
//! Event formats are in docs/queue.md. A stream ends after its `admitted` or `removed`
//! event; a member may have several streams (tabs), each gets every event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::web::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::admission::AdmissionSigner;
use crate::domain::estimate::estimated_wait_seconds;
use crate::store::room::{Standing, WaitingRoom};

/// Events queued per stream before position updates are dropped for a slow client.
const STREAM_BUFFER: usize = 8;

/// Tells the browser how soon to reconnect if the stream drops.
const RETRY_MS: u64 = 3000;

/// One SSE frame, and whether the stream ends after it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Bytes,
    pub last: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PositionEvent {
    pub status: &'static str,
    pub position: u64,
    pub waiting_count: u64,
    /// `null` until someone has been admitted from the queue in the rate window.
    pub estimated_wait_seconds: Option<u64>,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdmittedEvent {
    pub status: &'static str,
    pub admission_token: String,
    pub admission_token_expires_at: i64,
    /// How long the admission lasts without activity.
    pub allowed_in_seconds: u64,
    pub timestamp: i64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn frame(event: &str, data: &impl Serialize, last: bool) -> Frame {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Frame {
        bytes: Bytes::from(format!("event: {event}\ndata: {json}\n\n")),
        last,
    }
}

struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Frame>,
}

struct Inner {
    room: WaitingRoom,
    signer: AdmissionSigner,
    position_interval: Duration,
    heartbeat_interval: Duration,
    next_id: AtomicU64,
    streams: Mutex<HashMap<i64, Vec<Subscriber>>>,
}

/// This replica's SSE streams. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// Removes its stream from the hub when the client goes away (the body stream is dropped).
pub struct Subscription {
    hub: Hub,
    member: i64,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.member, self.id);
    }
}

impl Hub {
    pub fn new(
        room: WaitingRoom,
        signer: AdmissionSigner,
        position_interval: Duration,
        heartbeat_interval: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                room,
                signer,
                position_interval,
                heartbeat_interval,
                next_id: AtomicU64::new(1),
                streams: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<i64, Vec<Subscriber>>> {
        // Every statement leaves the map consistent; a panic elsewhere cannot break it.
        self.inner
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Streams connected to this replica.
    pub fn connections(&self) -> usize {
        self.streams().values().map(Vec::len).sum()
    }

    fn remove(&self, member: i64, id: u64) {
        let mut streams = self.streams();
        if let Some(subs) = streams.get_mut(&member) {
            subs.retain(|s| s.id != id);
            if subs.is_empty() {
                streams.remove(&member);
            }
        }
        metrics::gauge!("queue_sse_connections")
            .set(streams.values().map(Vec::len).sum::<usize>() as f64);
    }

    /// Registers a stream for `member`; the receiver yields its frames.
    pub fn subscribe(&self, member: i64) -> (Subscription, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.streams();
        streams
            .entry(member)
            .or_default()
            .push(Subscriber { id, tx });
        metrics::gauge!("queue_sse_connections")
            .set(streams.values().map(Vec::len).sum::<usize>() as f64);
        drop(streams);
        (
            Subscription {
                hub: self.clone(),
                member,
                id,
            },
            rx,
        )
    }

    /// The first line of every stream.
    pub fn retry_frame() -> Frame {
        Frame {
            bytes: Bytes::from(format!("retry: {RETRY_MS}\n\n")),
            last: false,
        }
    }

    pub fn position_frame(
        &self,
        position: u64,
        waiting_count: u64,
        admitted_in_window: u64,
    ) -> Frame {
        let estimate = estimated_wait_seconds(
            position,
            admitted_in_window,
            self.inner.room.settings().rate_window,
        );
        frame(
            "position",
            &PositionEvent {
                status: "WAITING",
                position,
                waiting_count,
                estimated_wait_seconds: estimate,
                timestamp: now_ms(),
            },
            false,
        )
    }

    /// The `admitted` event with a fresh admission token (signed here, on the replica that
    /// holds the stream).
    pub fn admitted_event(&self, member: i64) -> anyhow::Result<AdmittedEvent> {
        let (token, exp) = self.inner.signer.sign(member, now_ms() / 1000)?;
        Ok(AdmittedEvent {
            status: "ADMITTED",
            admission_token: token,
            admission_token_expires_at: exp,
            allowed_in_seconds: self.inner.room.settings().duration.as_secs(),
            timestamp: now_ms(),
        })
    }

    pub fn admitted_frame(&self, member: i64) -> anyhow::Result<Frame> {
        Ok(frame("admitted", &self.admitted_event(member)?, true))
    }

    fn removed_frame() -> Frame {
        frame(
            "removed",
            &serde_json::json!({
                "status": "NOT_IN_QUEUE",
                "message": "you are no longer in the queue; line up again with POST /api/v1/queue/lineup",
                "timestamp": now_ms(),
            }),
            true,
        )
    }

    fn heartbeat_frame() -> Frame {
        frame(
            "heartbeat",
            &serde_json::json!({ "timestamp": now_ms() }),
            false,
        )
    }

    /// Sends the final `admitted` event to every stream of each member and closes them.
    pub fn deliver_admitted(&self, members: &[i64]) {
        let mut taken = Vec::new();
        {
            let mut streams = self.streams();
            for m in members {
                if let Some(subs) = streams.remove(m) {
                    taken.push((*m, subs));
                }
            }
        }
        for (member, subs) in taken {
            let frame = match self.admitted_frame(member) {
                Ok(frame) => frame,
                Err(err) => {
                    tracing::error!(
                        member,
                        error = format!("{err:#}"),
                        "cannot sign an admission token"
                    );
                    continue;
                }
            };
            for sub in subs {
                // The admission is final; a full buffer still gets it (wait briefly).
                if let Err(mpsc::error::TrySendError::Full(f)) = sub.tx.try_send(frame.clone()) {
                    let tx = sub.tx.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(f)).await;
                    });
                }
                metrics::counter!("queue_sse_admissions_delivered_total").increment(1);
            }
        }
    }

    fn broadcast(&self, mut make: impl FnMut(i64) -> Option<Frame>) {
        let streams = self.streams();
        for (member, subs) in streams.iter() {
            if let Some(frame) = make(*member) {
                for sub in subs {
                    // Dropped when the client is slow: the next tick carries fresher news.
                    let _ = sub.tx.try_send(frame.clone());
                }
            }
        }
    }

    /// One position tick for every member streaming from this replica.
    pub async fn tick_positions(&self) -> anyhow::Result<()> {
        let members: Vec<i64> = self.streams().keys().copied().collect();
        if members.is_empty() {
            return Ok(());
        }
        let standings = self.inner.room.standings(&members).await?;
        let mut admitted = Vec::new();
        let mut gone = Vec::new();
        let mut frames = HashMap::with_capacity(members.len());
        for (member, standing) in members.iter().zip(&standings.members) {
            match standing {
                Standing::Waiting { position } => {
                    frames.insert(
                        *member,
                        self.position_frame(
                            *position,
                            standings.waiting_total,
                            standings.admitted_in_window,
                        ),
                    );
                }
                Standing::Admitted => admitted.push(*member),
                Standing::Absent => gone.push(*member),
            }
        }
        self.broadcast(|m| frames.remove(&m));
        // Admissions whose message this replica missed (e.g. while resubscribing).
        self.deliver_admitted(&admitted);
        let mut streams = self.streams();
        for member in gone {
            if let Some(subs) = streams.remove(&member) {
                for sub in subs {
                    let _ = sub.tx.try_send(Self::removed_frame());
                }
            }
        }
        Ok(())
    }

    /// Position and heartbeat timers, until shutdown.
    pub async fn run_timers(self, shutdown: CancellationToken) {
        let mut positions = tokio::time::interval(self.inner.position_interval);
        let mut heartbeats = tokio::time::interval(self.inner.heartbeat_interval);
        positions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Both fire at once on the first tick; streams already got their first event.
        positions.tick().await;
        heartbeats.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = positions.tick() => {
                    if let Err(err) = self.tick_positions().await {
                        tracing::warn!(error = format!("{err:#}"), "position tick failed");
                    }
                }
                _ = heartbeats.tick() => {
                    let frame = Self::heartbeat_frame();
                    self.broadcast(|_| Some(frame.clone()));
                }
            }
        }
    }

    /// Subscribes to the admissions channel and delivers what arrives, reconnecting with a
    /// backoff when Redis goes away, until shutdown.
    pub async fn listen(self, redis_url: String, shutdown: CancellationToken) {
        let channel = self.inner.room.channel().to_owned();
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                let client = redis::Client::open(redis_url.as_str())?;
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = attempt => result,
            };
            match pubsub {
                Ok(pubsub) => {
                    backoff = Duration::from_millis(100);
                    tracing::info!(channel, "listening for admissions");
                    // Catch up on anything announced while we were not listening.
                    if let Err(err) = self.tick_positions().await {
                        tracing::warn!(error = format!("{err:#}"), "catch-up tick failed");
                    }
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            message = messages.next() => match message {
                                Some(msg) => {
                                    let payload: String = msg.get_payload().unwrap_or_default();
                                    let ids: Vec<i64> = payload
                                        .split(',')
                                        .filter_map(|s| s.trim().parse().ok())
                                        .collect();
                                    self.deliver_admitted(&ids);
                                }
                                None => break,
                            }
                        }
                    }
                    tracing::warn!(channel, "admissions subscription ended; reconnecting");
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "cannot subscribe to admissions");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
