//! Filling an index from content's `/internal/posts` (every live post, in id order).
//!
//! - **Reindex** (`POST /admin/search/reindex`): a fresh generation is filled while the
//!   consumer writes every event to both generations, then swapped in atomically; searches
//!   are served from the old generation throughout. Posts changed while the fill runs are
//!   right either way: a page carries the post as content has it now, an event carries the
//!   change, and the newer version wins; a delete leaves a tombstone a page cannot undo.
//! - **Bootstrap**: an empty index at start is filled in place (topics only hold the last
//!   `TOPIC_RETENTION` days, content holds everything).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use resilience::ResilientClient;
use serde::{Deserialize, Serialize};

use crate::index::{Change, Generation, PostDoc, SearchIndex};

const PAGE: u32 = 1000;
/// Commit every this many pages while filling (bounds the writer's memory).
const COMMIT_EVERY_PAGES: u32 = 50;

#[derive(Deserialize)]
struct PostsPage {
    items: Vec<PostDoc>,
    next_after: Option<i64>,
}

/// How the last (or running) rebuild went.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct RebuildStatus {
    pub running: bool,
    /// `reindex` or `bootstrap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub posts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Rebuilder {
    index: Arc<SearchIndex>,
    content: ResilientClient,
    status: Arc<Mutex<RebuildStatus>>,
}

impl Rebuilder {
    pub fn new(index: Arc<SearchIndex>, content: ResilientClient) -> Self {
        Self {
            index,
            content,
            status: Arc::new(Mutex::new(RebuildStatus::default())),
        }
    }

    pub fn status(&self) -> RebuildStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut RebuildStatus)) {
        if let Ok(mut status) = self.status.lock() {
            f(&mut status);
        }
    }

    /// Starts a reindex in the background; false if one is already running.
    pub fn start_reindex(&self) -> anyhow::Result<bool> {
        let Some(generation) = self.index.begin_rebuild()? else {
            return Ok(false);
        };
        self.begin("reindex");
        let this = self.clone();
        tokio::spawn(async move {
            let result = match this.fill(&generation, false).await {
                Ok(posts) => {
                    let index = Arc::clone(&this.index);
                    let g = Arc::clone(&generation);
                    match tokio::task::spawn_blocking(move || index.finish_rebuild(&g)).await {
                        Ok(Ok(())) => Ok(posts),
                        Ok(Err(err)) => Err(err),
                        Err(err) => Err(err.into()),
                    }
                }
                Err(err) => Err(err),
            };
            if result.is_err() {
                this.index.abort_rebuild(&generation);
            }
            this.end(result);
        });
        Ok(true)
    }

    /// Fills the live generation in place (an empty index at start), in the background;
    /// the status says `running` from the moment this returns.
    pub fn start_bootstrap(&self) {
        self.begin("bootstrap");
        let this = self.clone();
        tokio::spawn(async move {
            let live = this.index.live();
            let result = this.fill(&live, true).await;
            this.end(result);
        });
    }

    fn begin(&self, kind: &str) {
        self.update(|s| {
            *s = RebuildStatus {
                running: true,
                kind: Some(kind.to_owned()),
                started_at: Some(Utc::now()),
                ..RebuildStatus::default()
            }
        });
    }

    fn end(&self, result: anyhow::Result<u64>) {
        self.update(|s| {
            s.running = false;
            s.finished_at = Some(Utc::now());
            match result {
                Ok(posts) => {
                    tracing::info!(kind = ?s.kind, posts, "index rebuilt from content");
                    s.posts = posts;
                    s.error = None;
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), kind = ?s.kind, "index rebuild failed");
                    s.error = Some(format!("{err:#}"));
                }
            }
        });
    }

    /// One page of posts. A bootstrap waits out a content outage (retrying with backoff
    /// from where it stopped); a reindex gives up after a few tries.
    async fn page(&self, after: i64, retry_forever: bool) -> anyhow::Result<PostsPage> {
        let path = format!("/internal/posts?after={after}&limit={PAGE}");
        let mut attempt = 0u32;
        loop {
            let result: anyhow::Result<PostsPage> = async {
                let res = self.content.get(&path).await?;
                let status = res.status();
                if !status.is_success() {
                    anyhow::bail!("content answered {status} for {path}");
                }
                Ok(res.json().await?)
            }
            .await;
            match result {
                Ok(page) => return Ok(page),
                Err(err) if retry_forever || attempt < 3 => {
                    attempt += 1;
                    let delay = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
                    tracing::warn!(error = %format!("{err:#}"), attempt, ?delay, "cannot read posts from content; retrying");
                    self.update(|s| s.error = Some(format!("{err:#}")));
                    tokio::time::sleep(delay).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn fill(&self, generation: &Arc<Generation>, retry_forever: bool) -> anyhow::Result<u64> {
        let started = Instant::now();
        let mut after = 0;
        let mut posts = 0u64;
        let mut pages = 0u32;
        loop {
            let page = self.page(after, retry_forever).await?;
            let g = Arc::clone(generation);
            let count = page.items.len() as u64;
            pages += 1;
            let commit = pages.is_multiple_of(COMMIT_EVERY_PAGES) || page.next_after.is_none();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                for post in page.items {
                    g.apply(&Change::Upsert(post))?;
                }
                if commit {
                    g.commit()?;
                }
                Ok(())
            })
            .await??;
            posts += count;
            self.update(|s| s.posts = posts);
            match page.next_after {
                Some(next) => after = next,
                None => break,
            }
        }
        tracing::info!(
            posts,
            seconds = started.elapsed().as_secs_f64(),
            "filled from content"
        );
        Ok(posts)
    }
}
