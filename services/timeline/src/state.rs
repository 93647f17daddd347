//! What handlers share.

use std::time::Duration;

use pagination::CursorCodec;
use sea_orm::DatabaseConnection;

use crate::authors::Authors;
use crate::cache::Cache;

#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `FEED_CACHE_SECONDS` (60): first page of a follow feed.
    pub feed_ttl: Duration,
    /// `HOT_CACHE_SECONDS` (30): first pages of popular and most-commented.
    pub hot_ttl: Duration,
    /// `AUTHOR_CACHE_SECONDS` (300): an author's nickname and image.
    pub author_ttl: Duration,
}

pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub authors: Authors,
    pub cursor: CursorCodec,
    pub settings: CacheSettings,
}
