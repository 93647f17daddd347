//! The event envelope every dailyfeed event travels in, and the closed set of event types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dedup;
use crate::topics::{TopicName, TopicZone};

/// What happened. Serialised in the seed's SCREAMING_SNAKE form (`POST_CREATE`), which is
/// also what the dedup key embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    PostCreate,
    PostUpdate,
    PostDelete,
    PostRead,
    CommentCreate,
    CommentUpdate,
    CommentDelete,
    CommentRead,
    LikePost,
    LikePostCancel,
    LikeComment,
    LikeCommentCancel,
    Follow,
    Unfollow,
    MemberCreate,
    MemberUpdate,
    MemberDelete,
    ImageUpload,
    ImageDelete,
}

impl EventType {
    pub const ALL: [EventType; 19] = [
        EventType::PostCreate,
        EventType::PostUpdate,
        EventType::PostDelete,
        EventType::PostRead,
        EventType::CommentCreate,
        EventType::CommentUpdate,
        EventType::CommentDelete,
        EventType::CommentRead,
        EventType::LikePost,
        EventType::LikePostCancel,
        EventType::LikeComment,
        EventType::LikeCommentCancel,
        EventType::Follow,
        EventType::Unfollow,
        EventType::MemberCreate,
        EventType::MemberUpdate,
        EventType::MemberDelete,
        EventType::ImageUpload,
        EventType::ImageDelete,
    ];

    /// The seed's name for this type, e.g. `"LIKE_POST_CANCEL"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PostCreate => "POST_CREATE",
            EventType::PostUpdate => "POST_UPDATE",
            EventType::PostDelete => "POST_DELETE",
            EventType::PostRead => "POST_READ",
            EventType::CommentCreate => "COMMENT_CREATE",
            EventType::CommentUpdate => "COMMENT_UPDATE",
            EventType::CommentDelete => "COMMENT_DELETE",
            EventType::CommentRead => "COMMENT_READ",
            EventType::LikePost => "LIKE_POST",
            EventType::LikePostCancel => "LIKE_POST_CANCEL",
            EventType::LikeComment => "LIKE_COMMENT",
            EventType::LikeCommentCancel => "LIKE_COMMENT_CANCEL",
            EventType::Follow => "FOLLOW",
            EventType::Unfollow => "UNFOLLOW",
            EventType::MemberCreate => "MEMBER_CREATE",
            EventType::MemberUpdate => "MEMBER_UPDATE",
            EventType::MemberDelete => "MEMBER_DELETE",
            EventType::ImageUpload => "IMAGE_UPLOAD",
            EventType::ImageDelete => "IMAGE_DELETE",
        }
    }

    /// The (undated) topic this type is published to. One topic per publishing service, so
    /// that everything about one aggregate — a post with its comments and likes, keyed by
    /// post id — lands in one partition and stays ordered.
    pub fn topic(self) -> TopicName {
        match self {
            EventType::PostCreate
            | EventType::PostUpdate
            | EventType::PostDelete
            | EventType::PostRead
            | EventType::CommentCreate
            | EventType::CommentUpdate
            | EventType::CommentDelete
            | EventType::CommentRead
            | EventType::LikePost
            | EventType::LikePostCancel
            | EventType::LikeComment
            | EventType::LikeCommentCancel => TopicName::CONTENT_EVENTS,
            EventType::Follow
            | EventType::Unfollow
            | EventType::MemberCreate
            | EventType::MemberUpdate
            | EventType::MemberDelete => TopicName::MEMBER_EVENTS,
            EventType::ImageUpload | EventType::ImageDelete => TopicName::IMAGE_EVENTS,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventType(pub String);

impl std::fmt::Display for UnknownEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown event type `{}`", self.0)
    }
}

impl std::error::Error for UnknownEventType {}

/// W3C trace context captured when the event was created, so the consumer's span joins the
/// trace of the HTTP request that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// One event, as written to the outbox and carried on Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope<P = serde_json::Value> {
    /// UUIDv7: unique, and sortable by creation time.
    pub event_id: Uuid,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    /// The member who did it.
    pub actor_id: i64,
    /// What it was done to: post, comment or member id, by type.
    pub subject_id: i64,
    pub payload: P,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

impl<P> EventEnvelope<P> {
    /// A new event happening now, with a fresh UUIDv7.
    pub fn new(event_type: EventType, actor_id: i64, subject_id: i64, payload: P) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type,
            occurred_at: Utc::now(),
            actor_id,
            subject_id,
            payload,
            trace: None,
        }
    }

    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// The dated topic this event belongs to, e.g. `content-events-20261125`.
    pub fn topic(&self, zone: TopicZone) -> String {
        self.event_type.topic().dated(self.occurred_at, zone)
    }

    /// The consumer-side dedup key (seed 003 "메시지 키 형식").
    pub fn dedup_key(&self) -> String {
        dedup::dedup_key(
            self.event_type,
            self.subject_id,
            self.actor_id,
            self.occurred_at,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip_through_serde_and_from_str() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        assert!("POST_EXPLODE".parse::<EventType>().is_err());
    }

    #[test]
    fn envelope_serialises_snake_case_and_omits_missing_trace() {
        let env = EventEnvelope::new(EventType::PostCreate, 7, 42, serde_json::json!({"a": 1}));
        let json = serde_json::to_value(&env).expect("serialise");
        assert_eq!(json["event_type"], "POST_CREATE");
        assert_eq!(json["actor_id"], 7);
        assert_eq!(json["subject_id"], 42);
        assert!(json.get("trace").is_none());
        assert_eq!(env.event_id.get_version_num(), 7);
        let back: EventEnvelope = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, env);
    }

    #[test]
    fn unknown_event_type_fails_to_deserialise() {
        let raw = r#"{"event_id":"0190a0a0-0000-7000-8000-000000000000","event_type":"NOPE",
            "occurred_at":"2026-11-25T00:00:00Z","actor_id":1,"subject_id":2,"payload":null}"#;
        assert!(serde_json::from_str::<EventEnvelope>(raw).is_err());
    }

    #[test]
    fn each_service_publishes_to_its_own_topic() {
        assert_eq!(EventType::LikeComment.topic(), TopicName::CONTENT_EVENTS);
        assert_eq!(EventType::Unfollow.topic(), TopicName::MEMBER_EVENTS);
        assert_eq!(EventType::ImageDelete.topic(), TopicName::IMAGE_EVENTS);
    }
}
