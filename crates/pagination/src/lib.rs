//! Cursor pagination. A cursor is the position after the last item of a page — any
//! serialisable value, e.g. `(created_at, id)` — encoded as `base64url(json).base64url(mac)`
//! with an HMAC-SHA256 tag, so clients cannot forge positions: a tampered cursor is a 400,
//! never a query on a made-up key. Cursors are opaque to clients and stable while new items
//! arrive (they name a position, not an offset).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use service_runtime::{ConfigError, EnvSource, Environment, HttpError};
use sha2::Sha256;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// Bytes of the MAC kept in a cursor (128 bits).
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed")]
    Malformed,
    #[error("the cursor was not issued by this service")]
    Forged,
}

impl From<CursorError> for HttpError {
    fn from(err: CursorError) -> Self {
        HttpError::bad_request(err.to_string()).with_field("cursor", "invalid cursor")
    }
}

/// Signs and checks cursors with `CURSOR_SECRET`.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(<secret>)")
    }
}

impl CursorCodec {
    /// `CURSOR_SECRET` (default: a development constant — set a random value in production;
    /// every replica of a service must share it).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let secret = match env.get("CURSOR_SECRET").filter(|s| !s.is_empty()) {
            Some(secret) => secret,
            None => {
                Environment::from_env(env)?.dev_secret(
                    "CURSOR_SECRET",
                    "anyone who reads this code can forge pagination cursors",
                )?;
                "dailyfeed-development-cursor-secret".to_owned()
            }
        };
        if secret.len() < 16 {
            return Err(ConfigError::new(
                "CURSOR_SECRET",
                "<redacted>",
                "must be at least 16 characters",
            ));
        }
        Ok(Self::new(secret.as_bytes()))
    }

    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return Vec::new(),
        };
        mac.update(payload);
        mac.finalize().into_bytes()[..TAG_LEN].to_vec()
    }

    pub fn encode<T: Serialize>(&self, position: &T) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.tag(&payload))
        )
    }

    pub fn decode<T: DeserializeOwned>(&self, cursor: &str) -> Result<T, CursorError> {
        let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CursorError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Malformed)?;
        if tag.len() != TAG_LEN {
            return Err(CursorError::Forged);
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| CursorError::Malformed)?;
        mac.update(&payload);
        // Constant-time comparison of the truncated tag.
        mac.verify_truncated_left(&tag)
            .map_err(|_| CursorError::Forged)?;
        serde_json::from_slice(&payload).map_err(|_| CursorError::Malformed)
    }
}

/// `?cursor=&limit=` on list endpoints.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Where the previous page ended (`next_cursor` of that page).
    pub cursor: Option<String>,
    /// Items per page, 1–100 (default 20).
    pub limit: Option<u32>,
}

impl PageQuery {
    /// The page size, validated.
    pub fn limit(&self) -> Result<u32, HttpError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(HttpError::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))
            .with_field("limit", format!("1..={MAX_LIMIT}"))),
        }
    }

    /// The decoded position, if a cursor was given.
    pub fn position<T: DeserializeOwned>(
        &self,
        codec: &CursorCodec,
    ) -> Result<Option<T>, HttpError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| codec.decode(c).map_err(HttpError::from))
            .transpose()
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched items: the extra one only tells whether
    /// there is a next page. `position` gives the cursor position of an item.
    pub fn from_fetched<P: Serialize>(
        mut fetched: Vec<T>,
        limit: u32,
        codec: &CursorCodec,
        position: impl Fn(&T) -> P,
    ) -> Self {
        let limit = limit as usize;
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let next_cursor = more
            .then(|| fetched.last().map(|last| codec.encode(&position(last))))
            .flatten();
        Self {
            items: fetched,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let codec = CursorCodec::new(b"a test secret of some length");
        let cursor = codec.encode(&(1_700_000_000_123_456_i64, 42_i64));
        assert_eq!(
            codec.decode::<(i64, i64)>(&cursor),
            Ok((1_700_000_000_123_456, 42))
        );
        let (payload, tag) = cursor.split_once('.').unwrap_or_default();
        let forged_payload = URL_SAFE_NO_PAD.encode(b"[1,1]");
        assert_eq!(
            codec.decode::<(i64, i64)>(&format!("{forged_payload}.{tag}")),
            Err(CursorError::Forged)
        );
        assert_eq!(
            codec.decode::<(i64, i64)>(payload),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            codec.decode::<(i64, i64)>("!!.??"),
            Err(CursorError::Malformed)
        );
        let other = CursorCodec::new(b"another secret, another service");
        assert_eq!(
            other.decode::<(i64, i64)>(&cursor),
            Err(CursorError::Forged)
        );
        // A truncated tag must not pass.
        assert!(
            codec
                .decode::<(i64, i64)>(&format!("{payload}.AA"))
                .is_err()
        );
    }

    #[test]
    fn a_page_knows_whether_more_follow() {
        let codec = CursorCodec::new(b"a test secret of some length");
        let page = Page::from_fetched(vec![1, 2, 3], 2, &codec, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            codec.decode::<i32>(&page.next_cursor.unwrap_or_default()),
            Ok(2)
        );
        let last = Page::from_fetched(vec![1, 2], 2, &codec, |n| *n);
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn limit_is_bounded() {
        let q = |limit| PageQuery {
            cursor: None,
            limit,
        };
        assert_eq!(q(None).limit().ok(), Some(20));
        assert_eq!(q(Some(100)).limit().ok(), Some(100));
        assert!(q(Some(0)).limit().is_err());
        assert!(q(Some(101)).limit().is_err());
    }
}
