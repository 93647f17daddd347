//! The consumer's handler: every activity event becomes one `member_activities` document.
//!
//! Rules beyond "store it":
//! - **Toggles.** A cancel (`LIKE_POST_CANCEL`, `LIKE_COMMENT_CANCEL`, `UNFOLLOW`) hides the
//!   newest earlier uncancelled like/follow of the same member on the same subject, and is
//!   itself stored hidden — so like → cancel leaves nothing listed, whatever the gap between
//!   them. A like that arrives after its cancel (a re-driven dead letter) is matched the
//!   other way round.
//! - **Deletes.** `POST_DELETE` hides every other activity about the post (its creation and
//!   edits, comments and likes on it); `COMMENT_DELETE` the same for the comment. The delete
//!   itself stays listed.
//! - `MEMBER_DELETE` forgets the member's activity. Other member events are not activity.
//! - Events older than the retention are skipped (the TTL would delete them at once).
//! - FOLLOW/UNFOLLOW also drop the follower's cached following list.

use async_trait::async_trait;
use chrono::Utc;
use contracts::{EventEnvelope, EventType};
use events::{EventHandler, HandlerError, RecordInfo};
use mongodb::bson::DateTime;
use serde_json::Value;

use crate::following::Following;
use crate::store::{
    Activity, ActivityStore, Hidden, Snapshot, SubjectType, Written, is_unavailable,
};

/// Longest snapshot text kept, in characters.
const SNIPPET_CHARS: usize = 100;

pub struct Recorder {
    store: ActivityStore,
    following: Following,
}

impl Recorder {
    pub fn new(store: ActivityStore, following: Following) -> Self {
        Self { store, following }
    }

    async fn record(&self, event: &EventEnvelope) -> mongodb::error::Result<()> {
        let kind = event.event_type;
        if matches!(kind, EventType::Follow | EventType::Unfollow) {
            self.following.invalidate(event.actor_id).await;
        }
        if kind == EventType::MemberDelete {
            self.store.forget_member(event.actor_id).await?;
            return Ok(());
        }
        let Some(activity) = activity_of(event) else {
            return Ok(());
        };
        let age = Utc::now() - event.occurred_at;
        if age.to_std().is_ok_and(|age| age > self.store.retention()) {
            tracing::debug!(event_id = %event.event_id, "older than the retention: skipped");
            return Ok(());
        }
        let written = self.store.upsert(&activity).await?;
        if let Some(toggle) = cancelled_toggle(kind) {
            // A redelivered cancel that already cancelled its like must not cancel an older one.
            if written == Written::AlreadyThere
                && self
                    .store
                    .by_dedup_key(&activity.dedup_key)
                    .await?
                    .is_some_and(|stored| stored.cancels.is_some())
            {
                return Ok(());
            }
            self.store.cancel_latest(&activity, toggle.as_str()).await?;
        } else if let Some(cancel) = cancel_of(kind) {
            let uncancelled = written == Written::Inserted
                || self
                    .store
                    .by_dedup_key(&activity.dedup_key)
                    .await?
                    .is_some_and(|stored| stored.hidden != Some(Hidden::Cancelled));
            if uncancelled {
                self.store
                    .match_earlier_cancel(&activity, cancel.as_str())
                    .await?;
            }
        } else if kind == EventType::PostDelete {
            self.store
                .hide_about("post_id", event.subject_id, kind.as_str())
                .await?;
        } else if kind == EventType::CommentDelete {
            self.store
                .hide_about("comment_id", event.subject_id, kind.as_str())
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &EventEnvelope, _: &RecordInfo) -> Result<(), HandlerError> {
        self.record(event).await.map_err(|err| {
            if is_unavailable(&err) {
                HandlerError::Unavailable(err.into())
            } else if matches!(
                err.kind.as_ref(),
                mongodb::error::ErrorKind::BsonSerialization(_)
                    | mongodb::error::ErrorKind::InvalidArgument { .. }
            ) {
                HandlerError::Permanent(err.into())
            } else {
                HandlerError::Retryable(err.into())
            }
        })
    }
}

/// Whether events of this type are listed as activity (cancels and member lifecycle are not).
pub fn is_activity(kind: EventType) -> bool {
    !matches!(
        kind,
        EventType::MemberCreate
            | EventType::MemberUpdate
            | EventType::MemberDelete
            | EventType::ImageUpload
            | EventType::ImageDelete
    ) && cancelled_toggle(kind).is_none()
}

/// The like/follow a cancel undoes.
fn cancelled_toggle(kind: EventType) -> Option<EventType> {
    match kind {
        EventType::LikePostCancel => Some(EventType::LikePost),
        EventType::LikeCommentCancel => Some(EventType::LikeComment),
        EventType::Unfollow => Some(EventType::Follow),
        _ => None,
    }
}

/// The cancel that undoes a like/follow.
fn cancel_of(kind: EventType) -> Option<EventType> {
    match kind {
        EventType::LikePost => Some(EventType::LikePostCancel),
        EventType::LikeComment => Some(EventType::LikeCommentCancel),
        EventType::Follow => Some(EventType::Unfollow),
        _ => None,
    }
}

fn int(payload: &Value, field: &str) -> Option<i64> {
    payload.get(field).and_then(Value::as_i64)
}

fn snippet(payload: &Value, field: &str) -> Option<String> {
    let text = payload.get(field)?.as_str()?.trim();
    if text.is_empty() {
        return None;
    }
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(SNIPPET_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    Some(out)
}

/// The document an event becomes, or `None` if it is not member activity.
pub fn activity_of(event: &EventEnvelope) -> Option<Activity> {
    use EventType::*;
    let p = &event.payload;
    let (subject_type, post_id, comment_id, target, snapshot) = match event.event_type {
        PostCreate | PostUpdate | PostDelete | PostRead => (
            SubjectType::Post,
            Some(event.subject_id),
            None,
            int(p, "author_id"),
            Snapshot {
                title: snippet(p, "title"),
                excerpt: snippet(p, "body"),
            },
        ),
        CommentCreate | CommentUpdate | CommentDelete | CommentRead => (
            SubjectType::Comment,
            int(p, "post_id"),
            Some(event.subject_id),
            int(p, "post_author_id"),
            Snapshot {
                title: None,
                excerpt: snippet(p, "body"),
            },
        ),
        LikePost | LikePostCancel => (
            SubjectType::Post,
            Some(event.subject_id),
            None,
            int(p, "post_author_id"),
            Snapshot {
                title: snippet(p, "post_title"),
                excerpt: None,
            },
        ),
        LikeComment | LikeCommentCancel => (
            SubjectType::Comment,
            int(p, "post_id"),
            Some(event.subject_id),
            int(p, "comment_author_id"),
            Snapshot::default(),
        ),
        Follow | Unfollow => (
            SubjectType::Member,
            None,
            None,
            Some(event.subject_id),
            Snapshot::default(),
        ),
        MemberCreate | MemberUpdate | MemberDelete | ImageUpload | ImageDelete => return None,
    };
    let is_cancel = cancelled_toggle(event.event_type).is_some();
    Some(Activity {
        event_id: event.event_id.to_string(),
        dedup_key: event.dedup_key(),
        member_id: event.actor_id,
        activity_type: event.event_type.as_str().to_owned(),
        subject_type,
        subject_id: event.subject_id,
        post_id,
        comment_id,
        target_member_id: target,
        occurred_at: DateTime::from_millis(event.occurred_at.timestamp_millis()),
        recorded_at: DateTime::now(),
        snapshot,
        visible: !is_cancel,
        hidden: is_cancel.then_some(Hidden::IsCancel),
        cancels: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_comment_is_about_its_post_and_keeps_a_short_excerpt() {
        let long = "가".repeat(150);
        let event = EventEnvelope::new(
            EventType::CommentCreate,
            7,
            900,
            json!({"post_id": 42, "post_author_id": 3, "body": long}),
        );
        let activity = activity_of(&event).expect("activity");
        assert_eq!(activity.subject_type, SubjectType::Comment);
        assert_eq!(
            (
                activity.post_id,
                activity.comment_id,
                activity.target_member_id
            ),
            (Some(42), Some(900), Some(3))
        );
        let excerpt = activity.snapshot.excerpt.expect("excerpt");
        assert_eq!(excerpt.chars().count(), SNIPPET_CHARS + 1);
        assert!(excerpt.ends_with('…'));
        assert!(activity.visible);
    }

    #[test]
    fn cancels_are_stored_hidden_and_member_lifecycle_is_not_activity() {
        let cancel = EventEnvelope::new(EventType::LikePostCancel, 7, 42, json!({}));
        let activity = activity_of(&cancel).expect("activity");
        assert!(!activity.visible);
        assert_eq!(activity.hidden, Some(Hidden::IsCancel));
        let joined = EventEnvelope::new(EventType::MemberCreate, 7, 7, json!({}));
        assert!(activity_of(&joined).is_none());
    }

    #[test]
    fn toggles_pair_up() {
        for (on, off) in [
            (EventType::LikePost, EventType::LikePostCancel),
            (EventType::LikeComment, EventType::LikeCommentCancel),
            (EventType::Follow, EventType::Unfollow),
        ] {
            assert_eq!(cancel_of(on), Some(off));
            assert_eq!(cancelled_toggle(off), Some(on));
        }
        assert_eq!(cancel_of(EventType::PostCreate), None);
    }
}
