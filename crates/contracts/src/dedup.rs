//! Consumer-side dedup keys in the seed's format (seed 003 "메시지 키 형식"):
//! `member_activity:kafka_event:{TYPE}###{subjectId}###{memberId}[###{yyyy-MM-dd HH:mm:ss.SSSSSSSSS}]`.
//!
//! Two deliberate differences from the seed, both so that a *different* fact is never
//! mistaken for a redelivery of an earlier one (a redelivery carries the same `occurred_at`,
//! so a timestamp in the key never stops real dedup):
//! - `COMMENT_CREATE` keys on the comment id, not the post id — the seed's key would swallow a
//!   member's second comment on the same post.
//! - Toggles (`LIKE_*`, `FOLLOW`/`UNFOLLOW`) carry the timestamp too — otherwise like → cancel →
//!   like again inside the dedup TTL would drop the second like.

use chrono::{DateTime, Utc};

use crate::events::EventType;

/// Every dedup key starts with this.
pub const PREFIX: &str = "member_activity:kafka_event:";
/// Separator between key parts, as in the seed.
pub const SEPARATOR: &str = "###";
/// The seed's timestamp format: `yyyy-MM-dd HH:mm:ss.SSSSSSSSS` (nanoseconds), in UTC.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.9f";

/// Whether keys of this type carry the event time.
pub fn includes_timestamp(event_type: EventType) -> bool {
    !matches!(
        event_type,
        EventType::PostCreate
            | EventType::CommentCreate
            | EventType::MemberCreate
            | EventType::ImageUpload
    )
}

/// The dedup key for an event of `event_type` by `member_id` on `subject_id` at `occurred_at`.
pub fn dedup_key(
    event_type: EventType,
    subject_id: i64,
    member_id: i64,
    occurred_at: DateTime<Utc>,
) -> String {
    let mut key = format!(
        "{PREFIX}{}{SEPARATOR}{subject_id}{SEPARATOR}{member_id}",
        event_type.as_str()
    );
    if includes_timestamp(event_type) {
        key.push_str(SEPARATOR);
        key.push_str(&occurred_at.format(TIMESTAMP_FORMAT).to_string());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 23, 59, 59)
            .single()
            .expect("valid")
            + chrono::Duration::nanoseconds(123_456_789)
    }

    #[test]
    fn create_keys_have_no_timestamp() {
        assert_eq!(
            dedup_key(EventType::PostCreate, 42, 7, at()),
            "member_activity:kafka_event:POST_CREATE###42###7"
        );
        assert_eq!(
            dedup_key(EventType::CommentCreate, 9001, 7, at()),
            "member_activity:kafka_event:COMMENT_CREATE###9001###7"
        );
    }

    #[test]
    fn update_delete_read_keys_carry_nanosecond_timestamps() {
        for t in [
            EventType::PostUpdate,
            EventType::PostDelete,
            EventType::PostRead,
            EventType::CommentUpdate,
            EventType::CommentDelete,
            EventType::CommentRead,
        ] {
            assert_eq!(
                dedup_key(t, 42, 7, at()),
                format!(
                    "member_activity:kafka_event:{}###42###7###2026-11-24 23:59:59.123456789",
                    t.as_str()
                )
            );
        }
    }

    #[test]
    fn timestamp_is_zero_padded_to_nine_digits() {
        let whole_second = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid");
        assert_eq!(
            dedup_key(EventType::PostUpdate, 1, 2, whole_second),
            "member_activity:kafka_event:POST_UPDATE###1###2###2026-01-02 03:04:05.000000000"
        );
    }

    #[test]
    fn relike_after_cancel_is_a_different_key_but_redelivery_is_the_same() {
        let first = dedup_key(EventType::LikePost, 42, 7, at());
        let again = dedup_key(
            EventType::LikePost,
            42,
            7,
            at() + chrono::Duration::seconds(3),
        );
        assert_ne!(first, again);
        assert_eq!(first, dedup_key(EventType::LikePost, 42, 7, at()));
    }
}
