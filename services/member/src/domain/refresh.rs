//! Refresh tokens: opaque 256-bit random values, stored in Redis only as their SHA-256,
//! grouped in families (one login and all its rotations).
//!
//! Every refresh rotates: the presented token becomes `used` and a new one is issued in the
//! same family. Presenting a `used` token again means it was stolen (or replayed): the whole
//! family is revoked, as Ory Hydra does — except within a short grace window after the
//! rotation (`REFRESH_REUSE_GRACE_SECONDS`, Auth0's reuse interval, Okta's grace period), when
//! the same successor is answered again, so two tabs refreshing at once both stay logged in.
//! A family also has an absolute lifetime, so rotation cannot extend a session forever. All
//! of it is one Lua script per operation, so two concurrent refreshes of one token rotate it
//! once.
//!
//! The grace answer needs the successor's value, which Redis must not hold: the rotated
//! token's record keeps it sealed (AES-256-GCM) under a key derived from the rotated token
//! itself, so only someone presenting that token can open it.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contracts::redis_keys;
use deadpool_redis::Pool;
use sha2::{Digest, Sha256};

/// Rotates a refresh token. KEYS: presented token, new token. ARGV: key prefix, refresh TTL
/// (ms), grace window (ms), the new token sealed for the presented one.
///
/// In order: unknown token → `invalid`; family gone (logout, logout-all, reuse), or started
/// at a session epoch older than the member's (`contracts::redis_keys::member_epoch`) →
/// `revoked` (so a late replay never resurrects a revoked login); family past its absolute lifetime →
/// `expired`; token already used → `grace` with the sealed successor if it was rotated at
/// most the grace window ago and that successor is still unused, else `reused` (family
/// revoked); otherwise rotate → `ok`.
const ROTATE: &str = r#"
local token = redis.call('HMGET', KEYS[1], 'member_id', 'family', 'state', 'rotated_at_ms',
  'successor', 'sealed')
if not token[1] then return {'invalid'} end
local member, family, state = token[1], token[2], token[3]
local family_key = ARGV[1] .. 'auth:family:' .. family
local family_set = ARGV[1] .. 'auth:member_families:' .. member
local family_state = redis.call('HMGET', family_key, 'expires_at_ms', 'epoch')
local expires = family_state[1]
if not expires then return {'revoked'} end
-- A member-wide revocation since the login (a family born while it ran): end it.
local epoch = tonumber(family_state[2] or '0')
if epoch < tonumber(redis.call('GET', ARGV[1] .. 'auth:member-epoch:' .. member) or '0') then
  redis.call('DEL', family_key)
  redis.call('SREM', family_set, family)
  return {'revoked'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local remaining = tonumber(expires) - now
if remaining <= 0 then
  redis.call('DEL', family_key)
  redis.call('SREM', family_set, family)
  return {'expired'}
end
if state == 'used' then
  local grace = tonumber(ARGV[3])
  local rotated = tonumber(token[4])
  if grace > 0 and rotated and token[5] and token[6] and now - rotated <= grace
    and redis.call('HGET', token[5], 'state') == 'active' then
    return {'grace', member, family, token[6], epoch}
  end
  redis.call('DEL', family_key)
  redis.call('SREM', family_set, family)
  return {'reused', member, family}
end
redis.call('HSET', KEYS[1], 'state', 'used', 'rotated_at_ms', now, 'successor', KEYS[2],
  'sealed', ARGV[4])
redis.call('HSET', KEYS[2], 'member_id', member, 'family', family, 'state', 'active')
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(ARGV[2]), remaining))
return {'ok', member, family, epoch}
"#;

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Valid: here is the member and the replacement token. Within the grace window after a
    /// rotation, the same replacement again (`repeated`).
    Rotated {
        member_id: i64,
        token: String,
        repeated: bool,
        /// The session epoch the login started at: its access tokens are issued at it.
        epoch: u64,
    },
    /// Unknown, expired or from a revoked family.
    Invalid,
    /// Already used, outside the grace window (or its successor was used too): the family is
    /// now revoked.
    Reused { member_id: i64 },
}

#[derive(Clone)]
pub struct RefreshTokens {
    pool: Pool,
    prefix: String,
    ttl: Duration,
    family_lifetime: Duration,
    reuse_grace: Duration,
    rotate: redis::Script,
}

/// A new random token value and the hash it is stored under.
fn mint() -> (String, String) {
    let raw: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = hash(&token);
    (token, hash)
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The cipher that seals `token`'s successor: keyed by a hash of `token` under another label
/// than the one it is stored by, so the stored record cannot open it.
fn successor_cipher(token: &str) -> Aes256Gcm {
    let key = Sha256::new()
        .chain_update(b"dailyfeed refresh successor v1\0")
        .chain_update(token.as_bytes())
        .finalize();
    Aes256Gcm::new(&key)
}

fn seal_successor(token: &str, successor: &str) -> anyhow::Result<String> {
    let nonce: [u8; 12] = rand::random();
    let sealed = successor_cipher(token)
        .encrypt(&Nonce::from(nonce), successor.as_bytes())
        .map_err(|_| anyhow::anyhow!("cannot seal the successor token"))?;
    Ok(URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
}

fn open_successor(token: &str, sealed: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() <= 12 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let plain = successor_cipher(token)
        .decrypt(&Nonce::from(nonce), ciphertext)
        .ok()?;
    String::from_utf8(plain).ok()
}

impl RefreshTokens {
    pub fn new(pool: Pool, prefix: &str, ttl: Duration, family_lifetime: Duration) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
            ttl,
            family_lifetime,
            reuse_grace: Duration::ZERO,
            rotate: redis::Script::new(ROTATE),
        }
    }

    /// How long after a rotation the rotated token answers the same successor again
    /// (`Duration::ZERO`, the default: never — any second use is reuse).
    pub fn with_reuse_grace(mut self, grace: Duration) -> Self {
        self.reuse_grace = grace;
        self
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long a login lasts at most, however often it refreshes.
    pub fn family_lifetime(&self) -> Duration {
        self.family_lifetime
    }

    /// Starts a family (a login at the member's session `epoch`) and returns its first token.
    pub async fn issue(&self, member_id: i64, epoch: u64) -> anyhow::Result<String> {
        let family = uuid::Uuid::new_v4().simple().to_string();
        let (token, hash) = mint();
        let expires_at_ms = chrono::Utc::now().timestamp_millis()
            + i64::try_from(self.family_lifetime.as_millis()).unwrap_or(i64::MAX / 2);
        let mut conn = self.pool.get().await?;
        let family_key = redis_keys::refresh_family(&self.prefix, &family);
        let token_key = redis_keys::refresh_token(&self.prefix, &hash);
        let families = redis_keys::member_families(&self.prefix, member_id);
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&family_key)
            .arg("member_id")
            .arg(member_id)
            .arg("expires_at_ms")
            .arg(expires_at_ms)
            .arg("epoch")
            .arg(epoch)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&family_key)
            .arg(millis(self.family_lifetime))
            .ignore()
            .cmd("SADD")
            .arg(&families)
            .arg(&family)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&families)
            .arg(millis(self.family_lifetime))
            .ignore()
            .cmd("HSET")
            .arg(&token_key)
            .arg("member_id")
            .arg(member_id)
            .arg("family")
            .arg(&family)
            .arg("state")
            .arg("active")
            .ignore()
            .cmd("PEXPIRE")
            .arg(&token_key)
            .arg(millis(self.ttl.min(self.family_lifetime)))
            .ignore()
            .query_async::<()>(&mut *conn)
            .await?;
        Ok(token)
    }

    /// Presents `token`: rotates it, answers its successor again within the grace window, or
    /// reports it invalid or reused.
    pub async fn rotate(&self, token: &str) -> anyhow::Result<Rotation> {
        let (new_token, new_hash) = mint();
        let sealed = seal_successor(token, &new_token)?;
        let mut conn = self.pool.get().await?;
        let reply: Vec<String> = self
            .rotate
            .key(redis_keys::refresh_token(&self.prefix, &hash(token)))
            .key(redis_keys::refresh_token(&self.prefix, &new_hash))
            .arg(&self.prefix)
            .arg(millis(self.ttl))
            .arg(millis(self.reuse_grace))
            .arg(&sealed)
            .invoke_async(&mut *conn)
            .await?;
        let member = |i: usize| {
            reply
                .get(i)
                .and_then(|m| m.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let epoch = |i: usize| {
            reply
                .get(i)
                .and_then(|e| e.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => Rotation::Rotated {
                member_id: member(1),
                token: new_token,
                repeated: false,
                epoch: epoch(3),
            },
            Some("grace") => match reply.get(3).and_then(|s| open_successor(token, s)) {
                Some(successor) => Rotation::Rotated {
                    member_id: member(1),
                    token: successor,
                    repeated: true,
                    epoch: epoch(4),
                },
                None => {
                    tracing::error!("a rotated refresh token's successor does not open");
                    Rotation::Invalid
                }
            },
            Some("reused") => Rotation::Reused {
                member_id: member(1),
            },
            _ => Rotation::Invalid,
        })
    }

    /// Revokes the family `token` belongs to (logout). Unknown tokens are ignored.
    pub async fn revoke_family_of(&self, token: &str) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        let record: (Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(redis_keys::refresh_token(&self.prefix, &hash(token)))
            .arg("member_id")
            .arg("family")
            .query_async(&mut *conn)
            .await?;
        if let (Some(member), Some(family)) = record {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(redis_keys::refresh_family(&self.prefix, &family))
                .ignore()
                .cmd("SREM")
                .arg(redis_keys::member_families(&self.prefix, member))
                .arg(&family)
                .ignore()
                .query_async::<()>(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Revokes every family of `member_id` (logout everywhere). Returns how many.
    pub async fn revoke_all(&self, member_id: i64) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await?;
        let set = redis_keys::member_families(&self.prefix, member_id);
        let families: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&set)
            .query_async(&mut *conn)
            .await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for family in &families {
            pipe.cmd("DEL")
                .arg(redis_keys::refresh_family(&self.prefix, family))
                .ignore();
        }
        pipe.cmd("DEL").arg(&set).ignore();
        pipe.query_async::<()>(&mut *conn).await?;
        Ok(families.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_stored_only_as_hashes() {
        let (token, stored) = mint();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&token).map(|b| b.len()).ok(),
            Some(32)
        );
        assert_eq!(stored.len(), 64);
        assert_ne!(token, stored);
        assert_eq!(hash(&token), stored);
    }

    #[test]
    fn a_successor_opens_only_with_the_token_it_was_sealed_for() {
        let (old, _) = mint();
        let (new, _) = mint();
        let (other, _) = mint();
        let sealed = seal_successor(&old, &new).unwrap();
        assert!(!sealed.contains(&new));
        assert_eq!(open_successor(&old, &sealed), Some(new));
        assert_eq!(open_successor(&other, &sealed), None);
        assert_eq!(open_successor(&old, "garbage"), None);
        assert_eq!(open_successor(&old, ""), None);
    }
}
