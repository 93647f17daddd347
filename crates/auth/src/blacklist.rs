//! The logout blacklist: a revoked access token's `jti` is kept in Redis until the token's
//! `exp`, after which the token is refused for being expired anyway.

use deadpool_redis::Pool;

#[derive(Clone)]
pub struct Blacklist {
    pool: Pool,
    prefix: String,
}

impl Blacklist {
    pub fn new(pool: Pool, prefix: &str) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
        }
    }

    /// Revokes `jti` until `exp` (seconds since the epoch).
    pub async fn add(&self, jti: &str, exp: i64) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        let _: Option<String> = redis::cmd("SET")
            .arg(contracts::redis_keys::access_blacklist(&self.prefix, jti))
            .arg(1)
            .arg("EXAT")
            .arg(exp.max(1))
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn contains(&self, jti: &str) -> anyhow::Result<bool> {
        let mut conn = self.pool.get().await?;
        let exists: bool = redis::cmd("EXISTS")
            .arg(contracts::redis_keys::access_blacklist(&self.prefix, jti))
            .query_async(&mut *conn)
            .await?;
        Ok(exists)
    }
}
