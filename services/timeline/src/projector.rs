//! The consumer's handler: events → the read model, and the cache entries they make stale.
//!
//! | event | read model | cache dropped |
//! |---|---|---|
//! | POST_CREATE / POST_UPDATE | upsert (newer `version` wins) | the author's followers' first pages; hot lists on update |
//! | POST_DELETE | tombstone | followers' first pages, hot lists |
//! | COMMENT_CREATE / COMMENT_DELETE | the post's comment count as of the event | — (hot lists expire by TTL) |
//! | LIKE_POST / LIKE_POST_CANCEL | the post's like count as of the event | — |
//! | FOLLOW / UNFOLLOW | follow state as of the event | the follower's first page |
//! | MEMBER_UPDATE | — | the member's cached profile |

use async_trait::async_trait;
use contracts::{EventEnvelope, EventType};
use events::{EventHandler, HandlerError, RecordInfo};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;

use crate::cache::Cache;
use crate::feeds;
use crate::store::{self, Counter, PostFacts};

pub struct Projector {
    db: DatabaseConnection,
    cache: Cache,
}

impl Projector {
    pub fn new(db: DatabaseConnection, cache: Cache) -> Self {
        Self { db, cache }
    }

    async fn project(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let at = event.occurred_at;
        let p = &event.payload;
        match event.event_type {
            EventType::PostCreate | EventType::PostUpdate | EventType::PostDelete => {
                let post: PostFacts = serde_json::from_value(p.clone())
                    .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("post payload: {e}")))?;
                if event.event_type == EventType::PostDelete {
                    store::delete_post(&self.db, &post, at).await.map_err(db)?;
                } else {
                    store::upsert_post(&self.db, &post, at).await.map_err(db)?;
                }
                let followers = store::followers_of(&self.db, post.author_id)
                    .await
                    .map_err(db)?;
                let mut stale: Vec<String> = followers
                    .into_iter()
                    .map(feeds::following_cache_name)
                    .collect();
                if event.event_type != EventType::PostCreate {
                    stale.extend(feeds::hot_cache_names());
                }
                self.cache.forget(&stale).await;
            }
            EventType::CommentCreate | EventType::CommentDelete => {
                if let (Some(post), Some(count)) = (int(p, "post_id"), int(p, "post_comment_count"))
                {
                    store::set_count(&self.db, post, Counter::Comments, count, at)
                        .await
                        .map_err(db)?;
                }
            }
            EventType::LikePost | EventType::LikePostCancel => {
                if let Some(count) = int(p, "like_count") {
                    store::set_count(&self.db, event.subject_id, Counter::Likes, count, at)
                        .await
                        .map_err(db)?;
                }
            }
            EventType::Follow | EventType::Unfollow => {
                let active = event.event_type == EventType::Follow;
                store::set_follow(&self.db, event.actor_id, event.subject_id, active, at)
                    .await
                    .map_err(db)?;
                self.cache
                    .forget(&[feeds::following_cache_name(event.actor_id)])
                    .await;
            }
            EventType::MemberUpdate => {
                self.cache
                    .forget(&[crate::authors::cache_name(event.subject_id)])
                    .await;
            }
            _ => {}
        }
        Ok(())
    }
}

fn int(payload: &Value, field: &str) -> Option<i64> {
    payload.get(field).and_then(Value::as_i64)
}

/// A database that cannot be reached is `Unavailable` (wait, never dead-letter); anything
/// else is retried, then dead-lettered.
fn db(err: DbErr) -> HandlerError {
    match err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => HandlerError::Unavailable(err.into()),
        other => HandlerError::Retryable(other.into()),
    }
}

#[async_trait]
impl EventHandler for Projector {
    async fn handle(&self, event: &EventEnvelope, _: &RecordInfo) -> Result<(), HandlerError> {
        self.project(event).await
    }
}
