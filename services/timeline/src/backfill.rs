//! Rebuilds the read model from the source services (`timeline backfill`): every live post
//! from content's `/internal/posts`, every follow from member's `/internal/follows`. The
//! same idempotent upserts as the consumer, stamped with the time each page was read, so
//! events that happen during the backfill still win and replays change nothing.

use chrono::Utc;
use resilience::ResilientClient;
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use crate::store::{self, PostFacts};

const PAGE: u32 = 1000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub posts: u64,
    pub follows: u64,
}

#[derive(Deserialize)]
struct PostsPage {
    items: Vec<PostFacts>,
    next_after: Option<i64>,
}

#[derive(Deserialize)]
struct FollowRow {
    follower_id: i64,
    followee_id: i64,
}

#[derive(Deserialize)]
struct FollowsPage {
    items: Vec<FollowRow>,
    next: Option<(i64, i64)>,
}

async fn page<T: serde::de::DeserializeOwned>(
    client: &ResilientClient,
    path: &str,
) -> anyhow::Result<T> {
    let res = client.get(path).await?;
    let status = res.status();
    if !status.is_success() {
        anyhow::bail!("{} answered {status} for {path}", client.downstream());
    }
    Ok(res.json().await?)
}

pub async fn run(
    db: &DatabaseConnection,
    content: &ResilientClient,
    member: &ResilientClient,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut after = 0;
    loop {
        let read_at = Utc::now();
        let posts: PostsPage = page(
            content,
            &format!("/internal/posts?after={after}&limit={PAGE}"),
        )
        .await?;
        for post in &posts.items {
            store::upsert_post(db, post, read_at).await?;
            report.posts += 1;
        }
        match posts.next_after {
            Some(next) => after = next,
            None => break,
        }
    }
    let mut next = (0, 0);
    loop {
        let read_at = Utc::now();
        let follows: FollowsPage = page(
            member,
            &format!(
                "/internal/follows?after_follower={}&after_followee={}&limit={PAGE}",
                next.0, next.1
            ),
        )
        .await?;
        for f in &follows.items {
            store::set_follow(db, f.follower_id, f.followee_id, true, read_at).await?;
            report.follows += 1;
        }
        match follows.next {
            Some(n) => next = n,
            None => break,
        }
    }
    tracing::info!(
        posts = report.posts,
        follows = report.follows,
        "backfill done"
    );
    Ok(report)
}
