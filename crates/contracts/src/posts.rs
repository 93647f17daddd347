//! The post as content publishes it in POST_CREATE / POST_UPDATE / POST_DELETE (the whole
//! post, so readers never call back) and lists it in `/internal/posts` (for rebuilds).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostSnapshot {
    /// `post_id` in events, `id` in content's `/internal/posts`.
    #[serde(alias = "id")]
    pub post_id: i64,
    pub author_id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub image_ids: Vec<String>,
    /// 1 for a post never edited; each edit adds one. Readers keep the highest.
    #[serde(default = "first_version")]
    pub version: i32,
    #[serde(default)]
    pub like_count: i64,
    #[serde(default)]
    pub comment_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn first_version() -> i32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_the_event_and_the_internal_list_shapes() {
        let at = "2026-11-25T10:00:00Z";
        let event: PostSnapshot = serde_json::from_str(&format!(
            r#"{{"post_id":1,"author_id":2,"title":null,"body":"b","version":3,"created_at":"{at}","updated_at":"{at}"}}"#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let listed: PostSnapshot = serde_json::from_str(&format!(
            r#"{{"id":1,"author_id":2,"body":"b","created_at":"{at}","updated_at":"{at}"}}"#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((event.post_id, event.version), (1, 3));
        assert_eq!((listed.post_id, listed.version, listed.title), (1, 1, None));
    }
}
