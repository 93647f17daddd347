//! Author nickname and profile image for feed items: from member's
//! `POST /internal/members/batch` through the resilient client (`critical` tier), cached in
//! Redis per author for `AUTHOR_CACHE_SECONDS` and dropped on MEMBER_UPDATE. When member
//! cannot answer, items carry what the cache has, else the author id alone, and the page is
//! marked degraded — the feed itself never fails because of member.

use std::collections::HashMap;
use std::time::Duration;

use resilience::ResilientClient;
use serde::{Deserialize, Serialize};

use crate::cache::Cache;

/// Most ids one batch call carries (member's limit).
const BATCH: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    pub id: i64,
    /// Absent when member could not be asked (degraded answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_image_id: Option<String>,
}

#[derive(Deserialize)]
struct Batch {
    members: Vec<Author>,
}

#[derive(Clone)]
pub struct Authors {
    member: ResilientClient,
    cache: Cache,
    ttl: Duration,
}

pub fn cache_name(id: i64) -> String {
    format!("author:{id}")
}

impl Authors {
    pub fn new(member: ResilientClient, cache: Cache, ttl: Duration) -> Self {
        Self { member, cache, ttl }
    }

    /// Profiles of `ids`; `degraded` when some could not be had.
    pub async fn of(&self, ids: &[i64]) -> (HashMap<i64, Author>, bool) {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let names: Vec<String> = ids.iter().map(|id| cache_name(*id)).collect();
        let cached: Vec<Option<Author>> = self.cache.get_many(&names).await;
        let mut found: HashMap<i64, Author> = HashMap::new();
        let mut missing = Vec::new();
        for (id, hit) in ids.iter().zip(cached) {
            match hit {
                Some(author) => {
                    found.insert(*id, author);
                }
                None => missing.push(*id),
            }
        }
        let mut degraded = false;
        for chunk in missing.chunks(BATCH) {
            match self.fetch(chunk).await {
                Ok(fetched) => {
                    let entries: Vec<(String, Author)> = fetched
                        .iter()
                        .map(|a| (cache_name(a.id), a.clone()))
                        .collect();
                    self.cache.put_many(&entries, self.ttl).await;
                    found.extend(fetched.into_iter().map(|a| (a.id, a)));
                }
                Err(reason) => {
                    tracing::warn!(%reason, "author profiles unavailable: degraded answer");
                    degraded = true;
                }
            }
        }
        for id in ids {
            found.entry(id).or_insert(Author {
                id,
                nickname: None,
                profile_image_id: None,
            });
        }
        (found, degraded)
    }

    async fn fetch(&self, ids: &[i64]) -> Result<Vec<Author>, String> {
        let res = self
            .member
            .post("/internal/members/batch")
            .json(&serde_json::json!({ "ids": ids }))
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("member answered {}", res.status()));
        }
        res.json::<Batch>()
            .await
            .map(|b| b.members)
            .map_err(|e| format!("unreadable answer: {e}"))
    }
}
