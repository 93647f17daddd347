//! Whom a member follows, from member's `/internal/members/{id}/following-ids`, cached in
//! Redis for `FOLLOWING_CACHE_SECONDS` and dropped from the cache when a FOLLOW/UNFOLLOW by
//! that member is consumed. Calls to member go through the resilient client (`critical`
//! tier: timeout, retries, circuit breaker, rate limit — `MEMBER_CLIENT_*`); when member
//! cannot answer and nothing is cached, callers get [`MemberUnavailable`] (a 503), never a
//! hang. A Redis failure only skips the cache.

use std::time::Duration;

use deadpool_redis::Pool;
use resilience::ResilientClient;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("the member service could not list whom you follow: {0}")]
pub struct MemberUnavailable(pub String);

#[derive(Deserialize)]
struct FollowingIds {
    following_ids: Vec<i64>,
}

#[derive(Clone)]
pub struct Following {
    member: ResilientClient,
    redis: Pool,
    key_prefix: String,
    ttl: Duration,
}

impl Following {
    pub fn new(member: ResilientClient, redis: Pool, key_prefix: &str, ttl: Duration) -> Self {
        Self {
            member,
            redis,
            key_prefix: key_prefix.to_owned(),
            ttl,
        }
    }

    fn key(&self, member_id: i64) -> String {
        format!("{}activity:following:{member_id}", self.key_prefix)
    }

    /// Ids of the members `member_id` follows.
    pub async fn ids(&self, member_id: i64) -> Result<Vec<i64>, MemberUnavailable> {
        if let Some(ids) = self.cached(member_id).await {
            metrics::counter!("activity_following_cache_total", "outcome" => "hit").increment(1);
            return Ok(ids);
        }
        metrics::counter!("activity_following_cache_total", "outcome" => "miss").increment(1);
        let ids = self.fetch(member_id).await?;
        self.store(member_id, &ids).await;
        Ok(ids)
    }

    /// Forgets the cached list (the member followed or unfollowed someone).
    pub async fn invalidate(&self, member_id: i64) {
        let key = self.key(member_id);
        if let Ok(mut conn) = self.redis.get().await {
            let deleted: Result<i64, _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
            if let Err(err) = deleted {
                tracing::warn!(error = %err, "cannot drop a cached following list");
            }
        }
    }

    async fn cached(&self, member_id: i64) -> Option<Vec<i64>> {
        let mut conn = self.redis.get().await.ok()?;
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.key(member_id))
            .query_async(&mut conn)
            .await
            .ok()?;
        serde_json::from_str(&raw?).ok()
    }

    async fn store(&self, member_id: i64, ids: &[i64]) {
        let Ok(mut conn) = self.redis.get().await else {
            return;
        };
        let Ok(json) = serde_json::to_string(ids) else {
            return;
        };
        let set: Result<(), _> = redis::cmd("SET")
            .arg(self.key(member_id))
            .arg(json)
            .arg("PX")
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut conn)
            .await;
        if let Err(err) = set {
            tracing::debug!(error = %err, "cannot cache a following list");
        }
    }

    async fn fetch(&self, member_id: i64) -> Result<Vec<i64>, MemberUnavailable> {
        let path = format!("/internal/members/{member_id}/following-ids");
        let result = async {
            let res = self.member.get(&path).await.map_err(|e| e.to_string())?;
            let status = res.status();
            if !status.is_success() {
                return Err(format!("member answered {status}"));
            }
            res.json::<FollowingIds>()
                .await
                .map(|body| body.following_ids)
                .map_err(|e| format!("member's answer was unreadable: {e}"))
        }
        .await;
        result.map_err(|reason| {
            tracing::warn!(member_id, %reason, "following list unavailable");
            MemberUnavailable(reason)
        })
    }
}
