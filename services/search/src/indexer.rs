//! The consumer's handler: POST_CREATE / POST_UPDATE / POST_DELETE → the index.
//!
//! The runner is *checkpointed*: [`EventHandler::handle`] only writes to the index writer
//! (memory); [`EventHandler::checkpoint`] commits the index (fsync) and only then does the
//! runner store and commit the Kafka offsets. A crash before the index commit replays the
//! events after the last committed offsets; a crash between the index commit and the offset
//! commit replays events the index already has, which the version check turns into no-ops.
//! Nothing is lost and nothing is indexed twice (one document per post).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use contracts::{EventEnvelope, EventType};
use events::{EventHandler, HandlerError, RecordInfo};

use crate::index::{Change, PostDoc, SearchIndex};

/// Next offset to read per (topic, partition), as far as the index has applied.
pub type Applied = Arc<Mutex<HashMap<(String, i32), i64>>>;

pub struct Indexer {
    index: Arc<SearchIndex>,
    applied: Applied,
    commits: AtomicU64,
    /// `SEARCH_TEST_CRASH_AFTER_COMMITS`: abort the process right after this many index
    /// commits, before the offsets are stored (a test hook for crash recovery; 0 = off).
    crash_after_commits: u64,
}

impl Indexer {
    pub fn new(index: Arc<SearchIndex>, applied: Applied, crash_after_commits: u64) -> Self {
        Self {
            index,
            applied,
            commits: AtomicU64::new(0),
            crash_after_commits,
        }
    }
}

/// The index change an event asks for, if any.
pub fn change_for(event: &EventEnvelope) -> Result<Option<Change>, HandlerError> {
    let permanent =
        |e: serde_json::Error| HandlerError::Permanent(anyhow::anyhow!("post payload: {e}"));
    Ok(match event.event_type {
        EventType::PostCreate | EventType::PostUpdate => Some(Change::Upsert(
            serde_json::from_value::<PostDoc>(event.payload.clone()).map_err(permanent)?,
        )),
        EventType::PostDelete => {
            let post_id = event
                .payload
                .get("post_id")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(event.subject_id);
            Some(Change::Delete { post_id })
        }
        _ => None,
    })
}

#[async_trait]
impl EventHandler for Indexer {
    async fn handle(&self, event: &EventEnvelope, record: &RecordInfo) -> Result<(), HandlerError> {
        if let Some(change) = change_for(event)? {
            self.index.apply(&change).map_err(HandlerError::Retryable)?;
            metrics::counter!("search_index_changes_total", "type" => event.event_type.as_str())
                .increment(1);
        }
        if let Ok(mut applied) = self.applied.lock() {
            applied.insert((record.topic.clone(), record.partition), record.offset + 1);
        }
        Ok(())
    }

    async fn checkpoint(&self) -> Result<(), HandlerError> {
        let index = Arc::clone(&self.index);
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || index.commit())
            .await
            .map_err(|e| HandlerError::Retryable(e.into()))?
            .map_err(HandlerError::Unavailable)?;
        metrics::histogram!("search_index_commit_seconds").record(started.elapsed().as_secs_f64());
        let commits = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crash_after_commits > 0 && commits >= self.crash_after_commits {
            tracing::error!(
                commits,
                "SEARCH_TEST_CRASH_AFTER_COMMITS reached: aborting before offsets are stored"
            );
            std::process::abort();
        }
        Ok(())
    }
}
