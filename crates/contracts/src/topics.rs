//! Date-suffixed topic names (`{name}-yyyyMMdd`, seed 003 Case (3)) and the zone that decides
//! which day an instant belongs to.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// Longest undated name: Kafka allows 249 characters and we append `-yyyyMMdd`.
pub const MAX_NAME_LEN: usize = 249 - 9;

/// An undated topic name such as `content-events`. Limited to `[A-Za-z0-9_-]` so it needs no
/// escaping inside a subscription regex and never mixes Kafka's `.`/`_` metric collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicName(&'static str);

impl TopicName {
    pub const CONTENT_EVENTS: TopicName = TopicName("content-events");
    pub const MEMBER_EVENTS: TopicName = TopicName("member-events");
    pub const IMAGE_EVENTS: TopicName = TopicName("image-events");

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// This name with an optional prefix (tests and shared brokers isolate with one).
    pub fn prefixed(self, prefix: &str) -> String {
        format!("{prefix}{}", self.0)
    }

    /// The topic of the day `at` falls on in `zone`.
    pub fn dated(self, at: DateTime<Utc>, zone: TopicZone) -> String {
        dated_topic(self.0, at, zone)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether `name` may be used as an undated topic name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `{name}-yyyyMMdd` for the calendar day of `at` in `zone`.
pub fn dated_topic(name: &str, at: DateTime<Utc>, zone: TopicZone) -> String {
    format!("{name}-{}", zone.day_of(at).format("%Y%m%d"))
}

/// `{name}-yyyyMMdd` for a given day.
pub fn topic_for_day(name: &str, day: NaiveDate) -> String {
    format!("{name}-{}", day.format("%Y%m%d"))
}

/// The day a dated topic of `name` is for, or `None` if `topic` is not one of them.
pub fn day_of_topic(name: &str, topic: &str) -> Option<NaiveDate> {
    let suffix = topic.strip_prefix(name)?.strip_prefix('-')?;
    if suffix.len() != 8 || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()
}

/// The librdkafka subscription regex matching every dated topic of `name`. librdkafka only
/// treats a subscription as a regex when it starts with `^`, and its engine has no `\d`.
pub fn subscription_pattern(name: &str) -> String {
    format!("^{name}-[0-9]{{8}}$")
}

/// The IANA zone whose calendar decides a topic's date (default UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicZone(Tz);

impl TopicZone {
    pub const UTC: TopicZone = TopicZone(Tz::UTC);

    pub fn day_of(self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.0).date_naive()
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for TopicZone {
    fn default() -> Self {
        TopicZone::UTC
    }
}

impl FromStr for TopicZone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Tz>()
            .map(TopicZone)
            .map_err(|_| format!("`{s}` is not an IANA time zone name (e.g. UTC, Asia/Seoul)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s)
            .single()
            .expect("valid")
    }

    #[test]
    fn utc_topic_changes_exactly_at_midnight() {
        let zone = TopicZone::UTC;
        let before = utc(2026, 11, 24, 23, 59, 59);
        let after = utc(2026, 11, 25, 0, 0, 0);
        assert_eq!(
            TopicName::CONTENT_EVENTS.dated(before, zone),
            "content-events-20261124"
        );
        assert_eq!(
            TopicName::CONTENT_EVENTS.dated(after, zone),
            "content-events-20261125"
        );
    }

    #[test]
    fn seoul_zone_moves_the_boundary_to_15_00_utc() {
        let seoul: TopicZone = "Asia/Seoul".parse().expect("zone");
        // 14:59:59 UTC is 23:59:59 KST on the 24th; a second later it is the 25th in Seoul.
        assert_eq!(
            dated_topic("member-activity", utc(2026, 11, 24, 14, 59, 59), seoul),
            "member-activity-20261124"
        );
        assert_eq!(
            dated_topic("member-activity", utc(2026, 11, 24, 15, 0, 0), seoul),
            "member-activity-20261125"
        );
    }

    #[test]
    fn year_boundary_and_leap_day() {
        assert_eq!(
            dated_topic("t", utc(2027, 12, 31, 23, 59, 59), TopicZone::UTC),
            "t-20271231"
        );
        assert_eq!(
            dated_topic("t", utc(2028, 2, 29, 12, 0, 0), TopicZone::UTC),
            "t-20280229"
        );
    }

    #[test]
    fn day_of_topic_parses_only_real_dated_topics_of_that_name() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        assert_eq!(
            day_of_topic("content-events", "content-events-20261125"),
            Some(day)
        );
        assert_eq!(
            day_of_topic("content-events", "content-events-2026112"),
            None
        );
        assert_eq!(
            day_of_topic("content-events", "content-events-20261332"),
            None
        );
        assert_eq!(day_of_topic("content-events", "content-events.DLT"), None);
        assert_eq!(day_of_topic("content", "content-events-20261125"), None);
        assert_eq!(
            topic_for_day("content-events", day),
            "content-events-20261125"
        );
    }

    #[test]
    fn subscription_pattern_uses_a_character_class_not_backslash_d() {
        assert_eq!(
            subscription_pattern("content-events"),
            "^content-events-[0-9]{8}$"
        );
    }

    #[test]
    fn zone_parsing_rejects_garbage_with_a_helpful_message() {
        assert!("Mars/Olympus".parse::<TopicZone>().is_err());
        assert_eq!("UTC".parse::<TopicZone>(), Ok(TopicZone::UTC));
    }

    #[test]
    fn names_are_restricted_to_regex_safe_characters() {
        assert!(is_valid_name("content-events"));
        assert!(is_valid_name("t_1-abc"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a.b"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name(&"x".repeat(MAX_NAME_LEN + 1)));
    }
}
