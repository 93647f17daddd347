//! What each content write publishes. Every event of a post's thread (the post, its
//! comments, likes on either) is keyed `post:{id}`, so consumers see a thread in order.
//!
//! POST_READ / COMMENT_READ are not emitted: a read must not write (an outbox row per read
//! would turn the read path into a write path and multiply load by the read/write ratio).
//! If read activity is wanted later, count reads in Redis (HyperLogLog per post) and publish
//! a periodic summary event — never one event per read.

use contracts::{EventEnvelope, EventType};
use serde_json::json;

use crate::store::comments::CommentRow;
use crate::store::posts::Post;

pub fn key(post_id: i64) -> String {
    format!("post:{post_id}")
}

/// POST_CREATE / POST_UPDATE / POST_DELETE with the full post (search indexes the text).
pub fn post(kind: EventType, actor: i64, post: &Post) -> EventEnvelope {
    EventEnvelope::new(
        kind,
        actor,
        post.id,
        json!({
            "post_id": post.id,
            "author_id": post.author_id,
            "title": post.title,
            "body": post.body,
            "image_ids": post.image_ids,
            "version": post.version,
            "like_count": post.like_count,
            "comment_count": post.comment_count,
            "created_at": post.created_at,
            "updated_at": post.updated_at,
        }),
    )
}

/// COMMENT_CREATE / COMMENT_UPDATE / COMMENT_DELETE; subject is the comment.
pub fn comment(
    kind: EventType,
    actor: i64,
    comment: &CommentRow,
    post: &Post,
    comment_count: i64,
) -> EventEnvelope {
    EventEnvelope::new(
        kind,
        actor,
        comment.id,
        json!({
            "comment_id": comment.id,
            "post_id": comment.post_id,
            "parent_id": comment.parent_id,
            "author_id": comment.author_id,
            "post_author_id": post.author_id,
            "body": comment.body,
            "post_comment_count": comment_count,
            "created_at": comment.created_at,
        }),
    )
}

/// LIKE_POST / LIKE_POST_CANCEL; subject is the post.
pub fn post_like(kind: EventType, member: i64, post: &Post, like_count: i64) -> EventEnvelope {
    EventEnvelope::new(
        kind,
        member,
        post.id,
        json!({
            "post_id": post.id,
            "post_author_id": post.author_id,
            "like_count": like_count,
            "post_title": post.title,
        }),
    )
}

/// LIKE_COMMENT / LIKE_COMMENT_CANCEL; subject is the comment.
pub fn comment_like(
    kind: EventType,
    member: i64,
    comment: &CommentRow,
    like_count: i64,
) -> EventEnvelope {
    EventEnvelope::new(
        kind,
        member,
        comment.id,
        json!({
            "comment_id": comment.id,
            "post_id": comment.post_id,
            "comment_author_id": comment.author_id,
            "like_count": like_count,
        }),
    )
}

/// Appends `event` to the outbox in `txn`, keyed by its post.
pub async fn append_event(
    txn: &sea_orm::DatabaseTransaction,
    event: &EventEnvelope,
    post_id: i64,
) -> Result<(), sea_orm::DbErr> {
    ::events::append(txn, event, &key(post_id)).await
}
