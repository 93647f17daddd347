//! The logout blacklist: a revoked access token's `jti` is kept in Redis until the token's
//! `exp` plus the largest leeway a verifier may allow, after which the token is refused for
//! being expired anyway.
//!
//! Every revocation also bumps a sequence number and is published on a channel, in one
//! script. A verifier built with [`Blacklist::mirrored`] keeps a local copy from that
//! channel (after loading what was revoked before it listened), so checking a token costs
//! no round trip. The copy is trusted only while it is in sync: until the first load is
//! done, after the subscription drops, or when the sequence number shows a message that
//! did not arrive within [`MISSED_AFTER`], checks go to Redis again until a fresh load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_redis::Pool;

use crate::verifier::MAX_LEEWAY_SECONDS;
use futures_util::StreamExt;

/// How long a revocation may be announced (sequence number) without its message arriving
/// before the mirror stops trusting itself and reloads.
pub const MISSED_AFTER: Duration = Duration::from_secs(1);

/// Sets the blacklist key, bumps the sequence and announces `seq exp jti`, atomically.
const REVOKE: &str = r"
redis.call('SET', KEYS[1], 1, 'EXAT', ARGV[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], seq .. ' ' .. ARGV[1] .. ' ' .. ARGV[2])
return seq
";

/// Raises a member's session epoch (kept `ARGV[1]` ms), bumps the sequence and announces
/// `seq m member epoch exp`, atomically; returns the new epoch.
const REVOKE_MEMBER: &str = r"
local epoch = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local exp = tonumber(t[1]) + math.ceil(tonumber(ARGV[1]) / 1000)
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], seq .. ' m ' .. ARGV[2] .. ' ' .. epoch .. ' ' .. exp)
return epoch
";

#[derive(Clone)]
pub struct Blacklist {
    pool: Pool,
    prefix: String,
    mirror: Option<Arc<Mirror>>,
}

/// The local copy: revoked `jti` → `exp`, and member → (session epoch, until when it is kept).
#[derive(Default)]
struct Mirror {
    revoked: RwLock<HashMap<String, i64>>,
    epochs: RwLock<HashMap<i64, (u64, i64)>>,
    synced: AtomicBool,
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Mirror {
    fn insert(&self, jti: String, exp: i64) {
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        revoked.insert(jti, exp);
    }

    fn contains(&self, jti: &str) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        revoked.contains_key(jti)
    }

    /// Keeps the highest epoch heard for `member` (messages may arrive after a load).
    fn raise(&self, member: i64, epoch: u64, exp: i64) {
        let mut epochs = self.epochs.write().unwrap_or_else(|e| e.into_inner());
        let entry = epochs.entry(member).or_insert((0, exp));
        if epoch >= entry.0 {
            *entry = (epoch, exp.max(entry.1));
        }
    }

    fn epoch(&self, member: i64) -> u64 {
        let epochs = self.epochs.read().unwrap_or_else(|e| e.into_inner());
        epochs.get(&member).map_or(0, |(epoch, _)| *epoch)
    }

    fn prune(&self) {
        let now = now_seconds();
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        revoked.retain(|_, exp| *exp >= now);
        metrics::gauge!("auth_blacklist_mirror_entries").set(revoked.len() as f64);
        drop(revoked);
        let mut epochs = self.epochs.write().unwrap_or_else(|e| e.into_inner());
        epochs.retain(|_, (_, exp)| *exp >= now);
    }

    fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
        metrics::gauge!("auth_blacklist_mirror_synced").set(if synced { 1.0 } else { 0.0 });
    }
}

impl Blacklist {
    /// A blacklist that asks Redis on every check.
    pub fn new(pool: Pool, prefix: &str) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
            mirror: None,
        }
    }

    /// A blacklist that keeps a local copy in sync over pub/sub from `redis_url` (a
    /// background task, started here: call within a Tokio runtime).
    pub fn mirrored(pool: Pool, prefix: &str, redis_url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url)?;
        let mirror = Arc::new(Mirror::default());
        let this = Self {
            pool,
            prefix: prefix.to_owned(),
            mirror: Some(Arc::clone(&mirror)),
        };
        tokio::spawn(this.clone().follow(client, mirror));
        Ok(this)
    }

    /// Whether checks are answered from the local copy (a mirrored blacklist in sync).
    pub fn in_sync(&self) -> bool {
        self.mirror
            .as_ref()
            .is_some_and(|m| m.synced.load(Ordering::Acquire))
    }

    fn channel(&self) -> String {
        format!("{}auth:revocations", self.prefix)
    }

    fn sequence_key(&self) -> String {
        format!("{}auth:revocations:seq", self.prefix)
    }

    /// Revokes `jti`, a token expiring at `exp` (seconds since the epoch), and tells every
    /// mirror. The entry outlives `exp` by [`MAX_LEEWAY_SECONDS`]: a verifier allowing clock
    /// skew still accepts the token that long after `exp`, and must still find it revoked.
    pub async fn add(&self, jti: &str, exp: i64) -> anyhow::Result<()> {
        let exp = exp.saturating_add(i64::try_from(MAX_LEEWAY_SECONDS).unwrap_or(0));
        let mut conn = self.pool.get().await?;
        let _seq: i64 = redis::Script::new(REVOKE)
            .key(contracts::redis_keys::access_blacklist(&self.prefix, jti))
            .key(self.sequence_key())
            .arg(exp.max(1))
            .arg(jti)
            .arg(self.channel())
            .invoke_async(&mut *conn)
            .await?;
        if let Some(mirror) = &self.mirror {
            mirror.insert(jti.to_owned(), exp);
        }
        Ok(())
    }

    /// Ends every session of `member` at once: the member's epoch is raised, so each token
    /// issued before (whose `epoch` claim is lower) is refused by every verifier, and member
    /// issues new ones at the new epoch. The epoch is kept `keep_for` (at least the longest a
    /// token or refresh family issued before could live); returns the new epoch.
    pub async fn revoke_member(&self, member_id: i64, keep_for: Duration) -> anyhow::Result<u64> {
        let keep_ms = u64::try_from(keep_for.as_millis())
            .unwrap_or(u64::MAX)
            .max(1000);
        let mut conn = self.pool.get().await?;
        let epoch: u64 = redis::Script::new(REVOKE_MEMBER)
            .key(contracts::redis_keys::member_epoch(&self.prefix, member_id))
            .key(self.sequence_key())
            .arg(keep_ms)
            .arg(member_id)
            .arg(self.channel())
            .invoke_async(&mut *conn)
            .await?;
        if let Some(mirror) = &self.mirror {
            let keep = i64::try_from(keep_ms / 1000 + 1).unwrap_or(i64::MAX / 2);
            mirror.raise(member_id, epoch, now_seconds().saturating_add(keep));
        }
        Ok(epoch)
    }

    /// `member`'s session epoch now (0 until the first member-wide revocation).
    pub async fn member_epoch(&self, member_id: i64) -> anyhow::Result<u64> {
        if let Some(mirror) = &self.mirror
            && mirror.synced.load(Ordering::Acquire)
        {
            return Ok(mirror.epoch(member_id));
        }
        let mut conn = self.pool.get().await?;
        let epoch: Option<u64> = redis::cmd("GET")
            .arg(contracts::redis_keys::member_epoch(&self.prefix, member_id))
            .query_async(&mut *conn)
            .await?;
        Ok(epoch.unwrap_or(0))
    }

    /// Whether a token (`jti`, of `member_id`, issued at session `epoch`) was revoked, by
    /// logout or by a member-wide revocation since. One round trip without the mirror.
    pub async fn revoked(&self, jti: &str, member_id: i64, epoch: u64) -> anyhow::Result<bool> {
        if let Some(mirror) = &self.mirror
            && mirror.synced.load(Ordering::Acquire)
        {
            return Ok(mirror.contains(jti) || epoch < mirror.epoch(member_id));
        }
        let mut conn = self.pool.get().await?;
        let (listed, current): (bool, Option<u64>) = redis::pipe()
            .cmd("EXISTS")
            .arg(contracts::redis_keys::access_blacklist(&self.prefix, jti))
            .cmd("GET")
            .arg(contracts::redis_keys::member_epoch(&self.prefix, member_id))
            .query_async(&mut *conn)
            .await?;
        Ok(listed || epoch < current.unwrap_or(0))
    }

    pub async fn contains(&self, jti: &str) -> anyhow::Result<bool> {
        if let Some(mirror) = &self.mirror
            && mirror.synced.load(Ordering::Acquire)
        {
            return Ok(mirror.contains(jti));
        }
        let mut conn = self.pool.get().await?;
        let exists: bool = redis::cmd("EXISTS")
            .arg(contracts::redis_keys::access_blacklist(&self.prefix, jti))
            .query_async(&mut *conn)
            .await?;
        Ok(exists)
    }

    /// Keeps `mirror` in sync for as long as the process runs, reconnecting with backoff.
    async fn follow(self, client: redis::Client, mirror: Arc<Mirror>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            mirror.set_synced(false);
            let started = Instant::now();
            if let Err(err) = self.sync(&client, &mirror).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    retry_in_ms = backoff.as_millis() as u64,
                    "blacklist mirror out of sync; checking Redis per request meanwhile"
                );
            }
            mirror.set_synced(false);
            if started.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(100);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Subscribes, loads what was revoked before, then applies messages until something
    /// goes wrong (the error says what).
    async fn sync(&self, client: &redis::Client, mirror: &Mirror) -> anyhow::Result<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        let mut seen = self.load(mirror).await?;
        mirror.set_synced(true);
        tracing::debug!(seq = seen, "blacklist mirror in sync");
        let mut messages = pubsub.into_on_message();
        let mut check = tokio::time::interval(MISSED_AFTER / 2);
        let mut behind_since: Option<Instant> = None;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        anyhow::bail!("the pub/sub connection closed");
                    };
                    let payload: String = message.get_payload()?;
                    match Revocation::parse(&payload) {
                        Some((seq, revocation)) => {
                            revocation.apply(mirror);
                            seen = seen.max(seq);
                        }
                        None => tracing::warn!(payload, "unreadable revocation message"),
                    }
                }
                _ = check.tick() => {
                    mirror.prune();
                    let mut conn = self.pool.get().await?;
                    let announced: Option<i64> = redis::cmd("GET")
                        .arg(self.sequence_key())
                        .query_async(&mut *conn)
                        .await?;
                    if announced.unwrap_or(0) <= seen {
                        behind_since = None;
                    } else if behind_since.get_or_insert_with(Instant::now).elapsed() >= MISSED_AFTER {
                        anyhow::bail!("revocation {} was announced but never arrived", seen + 1);
                    }
                }
            }
        }
    }

    /// Loads every revoked jti and every member's session epoch; returns the sequence number
    /// the load covers.
    async fn load(&self, mirror: &Mirror) -> anyhow::Result<i64> {
        let mut conn = self.pool.get().await?;
        // Read first: anything revoked after this comes as a message (we subscribed).
        let seq: Option<i64> = redis::cmd("GET")
            .arg(self.sequence_key())
            .query_async(&mut *conn)
            .await?;
        let blacklisted = contracts::redis_keys::access_blacklist(&self.prefix, "");
        let revoked = scan_with_expiry(&mut conn, &blacklisted, false).await?;
        mirror
            .revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(revoked.into_iter().map(|(jti, _, exp)| (jti, exp)));
        let epochs = contracts::redis_keys::member_epochs(&self.prefix);
        for (member, epoch, exp) in scan_with_expiry(&mut conn, &epochs, true).await? {
            if let (Ok(member), Some(epoch)) = (member.parse::<i64>(), epoch) {
                mirror.raise(member, epoch, exp);
            }
        }
        Ok(seq.unwrap_or(0))
    }
}

/// Every key starting with `start` (SCAN, so Redis is never blocked), as (the rest of the
/// key, its value if `with_value`, when it expires in seconds since the epoch).
async fn scan_with_expiry(
    conn: &mut deadpool_redis::Connection,
    start: &str,
    with_value: bool,
) -> anyhow::Result<Vec<(String, Option<u64>, i64)>> {
    let pattern = format!("{start}*");
    let now = now_seconds();
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut **conn)
            .await?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("PTTL").arg(key);
                if with_value {
                    pipe.cmd("GET").arg(key);
                }
            }
            let replies: Vec<redis::Value> = pipe.query_async(&mut **conn).await?;
            let per_key = if with_value { 2 } else { 1 };
            for (key, reply) in keys.iter().zip(replies.chunks(per_key)) {
                let ttl: i64 = redis::from_redis_value(reply[0].clone())?;
                // -2: gone meanwhile; -1: no expiry (kept until pruned by hand).
                let exp = match ttl {
                    -2 => continue,
                    -1 => i64::MAX,
                    ms => now + ms / 1000 + 1,
                };
                let value = match reply.get(1) {
                    Some(v) => redis::from_redis_value::<Option<u64>>(v.clone())?,
                    None => None,
                };
                found.push((key[start.len()..].to_owned(), value, exp));
            }
        }
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

/// One announced revocation: `seq exp jti` (logout) or `seq m member epoch exp`.
#[derive(Debug, PartialEq, Eq)]
enum Revocation {
    Token { jti: String, exp: i64 },
    Member { member: i64, epoch: u64, exp: i64 },
}

impl Revocation {
    fn parse(payload: &str) -> Option<(i64, Self)> {
        let mut parts = payload.splitn(3, ' ');
        let seq = parts.next()?.parse::<i64>().ok()?;
        let second = parts.next()?;
        let rest = parts.next()?;
        if second == "m" {
            let mut fields = rest.split(' ');
            let member = fields.next()?.parse().ok()?;
            let epoch = fields.next()?.parse().ok()?;
            let exp = fields.next()?.parse().ok()?;
            return Some((seq, Revocation::Member { member, epoch, exp }));
        }
        let exp = second.parse().ok()?;
        Some((
            seq,
            Revocation::Token {
                jti: rest.to_owned(),
                exp,
            },
        ))
    }

    fn apply(self, mirror: &Mirror) {
        match self {
            Revocation::Token { jti, exp } => mirror.insert(jti, exp),
            Revocation::Member { member, epoch, exp } => mirror.raise(member, epoch, exp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_of_revocation_message_parse() {
        assert_eq!(
            Revocation::parse("7 1700000000 0190-abc"),
            Some((
                7,
                Revocation::Token {
                    jti: "0190-abc".into(),
                    exp: 1_700_000_000
                }
            ))
        );
        assert_eq!(
            Revocation::parse("8 m 42 3 1700000300"),
            Some((
                8,
                Revocation::Member {
                    member: 42,
                    epoch: 3,
                    exp: 1_700_000_300
                }
            ))
        );
        assert_eq!(Revocation::parse("x 1 y"), None);
        assert_eq!(Revocation::parse("9 m 42"), None);
    }

    #[test]
    fn the_mirror_keeps_the_highest_epoch_it_heard() {
        let mirror = Mirror::default();
        mirror.raise(1, 2, i64::MAX);
        mirror.raise(1, 1, i64::MAX);
        assert_eq!(mirror.epoch(1), 2);
        assert_eq!(mirror.epoch(2), 0);
    }
}
