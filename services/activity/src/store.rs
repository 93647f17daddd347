//! `member_activities` in MongoDB: one document per event, the dedup key unique, written as
//! an upsert so a redelivered event changes nothing even when Redis forgot it.
//!
//! One collection with a TTL index on `occurred_at` rather than the seed's per-day
//! collections: "my activity, newest first, cursor paged" and "activity of the members I
//! follow" are one indexed query across days instead of one query per day, and expiry is
//! exact to the second (`ACTIVITY_RETENTION_DAYS`) with no collection-dropping job.

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::{self, Bson, DateTime, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

pub const COLLECTION: &str = "member_activities";
/// The TTL index's name (its `expireAfterSeconds` follows `ACTIVITY_RETENTION_DAYS`).
pub const TTL_INDEX: &str = "occurred_at_ttl";
const DUPLICATE_KEY: i32 = 11000;

/// What an activity is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    Post,
    Comment,
    Member,
}

/// Why a stored activity is not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hidden {
    /// A like or follow that was cancelled afterwards.
    Cancelled,
    /// A cancel: it is shown as the absence of the like it cancelled, not as an entry.
    IsCancel,
    /// About a post or comment that was deleted since.
    SubjectDeleted,
}

/// A little of the subject, for display without a call to content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Snapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

/// One stored activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub event_id: String,
    pub dedup_key: String,
    pub member_id: i64,
    pub activity_type: String,
    pub subject_type: SubjectType,
    pub subject_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<i64>,
    /// Whose thing it was (post or comment author, the followed member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_member_id: Option<i64>,
    pub occurred_at: DateTime,
    pub recorded_at: DateTime,
    #[serde(default)]
    pub snapshot: Snapshot,
    pub visible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Hidden>,
    /// For cancels: the event id of the like/follow it cancelled, once matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancels: Option<String>,
}

/// Whose activity a list shows.
#[derive(Debug, Clone)]
pub enum Members {
    One(i64),
    Any(Vec<i64>),
}

/// One page request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub members: Members,
    /// Only these activity types (all when empty).
    pub types: Vec<String>,
    /// Strictly older than this (occurred_at millis, event id).
    pub before: Option<(i64, String)>,
    /// How many to fetch (the caller asks for one more than a page).
    pub fetch: i64,
}

/// Whether an upsert wrote a new document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Inserted,
    AlreadyThere,
}

#[derive(Clone)]
pub struct ActivityStore {
    collection: Collection<Activity>,
    retention: Duration,
    indexes: std::sync::Arc<OnceCell<()>>,
}

impl ActivityStore {
    pub fn new(db: &Database, retention: Duration) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            retention,
            indexes: std::sync::Arc::new(OnceCell::new()),
        }
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Creates the indexes once per process (the unique index must exist before the first
    /// write), and brings the TTL in line with the configured retention.
    pub async fn ensure_indexes(&self) -> mongodb::error::Result<()> {
        self.indexes
            .get_or_try_init(|| async {
                self.collection
                    .create_indexes(index_models())
                    .await
                    .map(|_| ())?;
                self.apply_retention().await
            })
            .await
            .map(|_| ())
    }

    async fn apply_retention(&self) -> mongodb::error::Result<()> {
        let ttl = ttl_index(self.retention);
        match self.collection.create_index(ttl).await {
            Ok(_) => Ok(()),
            // An index of that name with another expireAfterSeconds: change it in place.
            Err(err) if matches!(server_code(&err), Some(85 | 86)) => {
                let db = self
                    .collection
                    .client()
                    .database(self.collection.namespace().db.as_str());
                db.run_command(doc! {
                    "collMod": COLLECTION,
                    "index": { "name": TTL_INDEX, "expireAfterSeconds": ttl_seconds(self.retention) },
                })
                .await
                .map(|_| ())
            }
            Err(err) => Err(err),
        }
    }

    /// Inserts `activity` unless a document with its dedup key exists.
    pub async fn upsert(&self, activity: &Activity) -> mongodb::error::Result<Written> {
        self.ensure_indexes().await?;
        let document = bson::to_document(activity)?;
        let result = self
            .collection
            .update_one(
                doc! { "dedup_key": &activity.dedup_key },
                doc! { "$setOnInsert": document },
            )
            .upsert(true)
            .await;
        match result {
            Ok(r) if r.upserted_id.is_some() => Ok(Written::Inserted),
            Ok(_) => Ok(Written::AlreadyThere),
            // Two writers raced on the same key: the unique index let exactly one in.
            Err(err) if server_code(&err) == Some(DUPLICATE_KEY) => Ok(Written::AlreadyThere),
            Err(err) => Err(err),
        }
    }

    /// A cancel (`cancel`, already stored) hides the newest earlier, not yet cancelled
    /// `toggle_type` activity of the same member on the same subject. Returns whether one
    /// was found. Safe to repeat: a cancelled activity is never matched again.
    pub async fn cancel_latest(
        &self,
        cancel: &Activity,
        toggle_type: &str,
    ) -> mongodb::error::Result<bool> {
        let cancelled = self
            .collection
            .find_one_and_update(
                doc! {
                    "member_id": cancel.member_id,
                    "activity_type": toggle_type,
                    "subject_id": cancel.subject_id,
                    "occurred_at": { "$lte": cancel.occurred_at },
                    "hidden": { "$ne": bson::to_bson(&Hidden::Cancelled)? },
                },
                doc! { "$set": {
                    "visible": false,
                    "hidden": bson::to_bson(&Hidden::Cancelled)?,
                }},
            )
            .sort(doc! { "occurred_at": -1, "event_id": -1 })
            .await?;
        let Some(toggle) = cancelled else {
            return Ok(false);
        };
        self.collection
            .update_one(
                doc! { "dedup_key": &cancel.dedup_key },
                doc! { "$set": { "cancels": &toggle.event_id } },
            )
            .await?;
        Ok(true)
    }

    /// A like/follow that arrives after its cancel (a re-driven dead letter): if an
    /// unmatched cancel of the same member and subject happened at or after it, the two
    /// cancel out. Returns whether the toggle was hidden.
    pub async fn match_earlier_cancel(
        &self,
        toggle: &Activity,
        cancel_type: &str,
    ) -> mongodb::error::Result<bool> {
        let matched = self
            .collection
            .find_one_and_update(
                doc! {
                    "member_id": toggle.member_id,
                    "activity_type": cancel_type,
                    "subject_id": toggle.subject_id,
                    "occurred_at": { "$gte": toggle.occurred_at },
                    "cancels": { "$exists": false },
                },
                doc! { "$set": { "cancels": &toggle.event_id } },
            )
            .sort(doc! { "occurred_at": 1, "event_id": 1 })
            .await?;
        if matched.is_none() {
            return Ok(false);
        }
        self.collection
            .update_one(
                doc! { "dedup_key": &toggle.dedup_key },
                doc! { "$set": { "visible": false, "hidden": bson::to_bson(&Hidden::Cancelled)? } },
            )
            .await?;
        Ok(true)
    }

    /// The stored activity with this dedup key.
    pub async fn by_dedup_key(&self, dedup_key: &str) -> mongodb::error::Result<Option<Activity>> {
        self.collection
            .find_one(doc! { "dedup_key": dedup_key })
            .await
    }

    /// Hides every other activity about a deleted post or comment (`field` is `post_id` or
    /// `comment_id`). The delete itself stays listed.
    pub async fn hide_about(
        &self,
        field: &str,
        id: i64,
        delete_type: &str,
    ) -> mongodb::error::Result<u64> {
        let result = self
            .collection
            .update_many(
                doc! { field: id, "visible": true, "activity_type": { "$ne": delete_type } },
                doc! { "$set": {
                    "visible": false,
                    "hidden": bson::to_bson(&Hidden::SubjectDeleted)?,
                }},
            )
            .await?;
        Ok(result.modified_count)
    }

    /// Deletes everything a member did (the member was deleted).
    pub async fn forget_member(&self, member_id: i64) -> mongodb::error::Result<u64> {
        Ok(self
            .collection
            .delete_many(doc! { "member_id": member_id })
            .await?
            .deleted_count)
    }

    /// Listed activities, newest first.
    pub async fn list(&self, query: &ListQuery) -> mongodb::error::Result<Vec<Activity>> {
        let mut filter = Document::new();
        match &query.members {
            Members::One(id) => filter.insert("member_id", *id),
            Members::Any(ids) => filter.insert("member_id", doc! { "$in": ids.clone() }),
        };
        filter.insert("visible", true);
        if !query.types.is_empty() {
            filter.insert("activity_type", doc! { "$in": query.types.clone() });
        }
        if let Some((millis, event_id)) = &query.before {
            let at = DateTime::from_millis(*millis);
            filter.insert(
                "$or",
                vec![
                    Bson::Document(doc! { "occurred_at": { "$lt": at } }),
                    Bson::Document(doc! { "occurred_at": at, "event_id": { "$lt": event_id } }),
                ],
            );
        }
        self.collection
            .find(filter)
            .sort(doc! { "occurred_at": -1, "event_id": -1 })
            .limit(query.fetch)
            .await?
            .try_collect()
            .await
    }

    /// All stored documents of a member, hidden ones too (tests and support).
    pub async fn all_of(&self, member_id: i64) -> mongodb::error::Result<Vec<Activity>> {
        self.collection
            .find(doc! { "member_id": member_id })
            .sort(doc! { "occurred_at": 1, "event_id": 1 })
            .await?
            .try_collect()
            .await
    }
}

fn ttl_seconds(retention: Duration) -> i64 {
    i64::try_from(retention.as_secs()).unwrap_or(i64::MAX)
}

fn ttl_index(retention: Duration) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { "occurred_at": 1 })
        .options(
            IndexOptions::builder()
                .name(TTL_INDEX.to_owned())
                .expire_after(retention)
                .build(),
        )
        .build()
}

fn index_models() -> Vec<IndexModel> {
    let named = |keys: Document, name: &str, unique: bool, sparse: bool| {
        IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder()
                    .name(name.to_owned())
                    .unique(unique.then_some(true))
                    .sparse(sparse.then_some(true))
                    .build(),
            )
            .build()
    };
    vec![
        // The store's own duplicate guard.
        named(doc! { "dedup_key": 1 }, "dedup_key_unique", true, false),
        // Lists: a member's (or several members') activity, newest first.
        named(
            doc! { "member_id": 1, "occurred_at": -1, "event_id": -1 },
            "member_newest",
            false,
            false,
        ),
        // Toggle matching: this member's likes/follows of this subject.
        named(
            doc! { "member_id": 1, "subject_id": 1, "activity_type": 1 },
            "member_subject_type",
            false,
            false,
        ),
        // Hiding activity about a deleted post or comment.
        named(doc! { "post_id": 1 }, "post_id", false, true),
        named(doc! { "comment_id": 1 }, "comment_id", false, true),
    ]
}

/// The server's error code, for command and write errors.
pub fn server_code(err: &mongodb::error::Error) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

/// Whether the error means "the server is not reachable right now" (as opposed to "this
/// write can never work").
pub fn is_unavailable(err: &mongodb::error::Error) -> bool {
    matches!(
        err.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Shutdown
    ) || err.contains_label("RetryableWriteError")
        || err.contains_label("TransientTransactionError")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_options_stay_absent_in_the_stored_document() {
        let activity = Activity {
            event_id: "e".into(),
            dedup_key: "k".into(),
            member_id: 1,
            activity_type: "FOLLOW".into(),
            subject_type: SubjectType::Member,
            subject_id: 2,
            post_id: None,
            comment_id: None,
            target_member_id: Some(2),
            occurred_at: DateTime::from_millis(1),
            recorded_at: DateTime::from_millis(2),
            snapshot: Snapshot::default(),
            visible: true,
            hidden: None,
            cancels: None,
        };
        let document = bson::to_document(&activity).expect("serialise");
        // Sparse indexes and `$exists: false` rely on missing fields, not nulls.
        assert!(!document.contains_key("post_id"));
        assert!(!document.contains_key("cancels"));
        assert_eq!(document.get_str("subject_type"), Ok("member"));
        let back: Activity = bson::from_document(document).expect("deserialise");
        assert_eq!(back, activity);
    }
}
