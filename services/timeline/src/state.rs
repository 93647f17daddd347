//! What handlers share.

use std::time::Duration;

use pagination::CursorCodec;
use sea_orm::DatabaseConnection;

use crate::authors::Authors;
use crate::cache::{Cache, SingleFlight};
use crate::feeds::RankedPage;
use crate::store::FeedRow;

#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `FEED_CACHE_SECONDS` (60): first page of a follow feed.
    pub feed_ttl: Duration,
    /// `HOT_CACHE_SECONDS` (30): first pages of popular and most-commented.
    pub hot_ttl: Duration,
    /// `AUTHOR_CACHE_SECONDS` (300): an author's nickname and image.
    pub author_ttl: Duration,
    /// `TIMELINE_LOCAL_CACHE_MILLIS` (1000; 0 turns it off): finished first pages kept
    /// in-process.
    pub local_ttl: Duration,
    /// `TIMELINE_LOCAL_CACHE_ENTRIES` (10 000): most finished pages kept in-process.
    pub local_entries: usize,
    /// `TIMELINE_INBOX_DAYS` (30): how far back follow-feed inboxes reach; older pages are
    /// pulled from the followees' ranges.
    pub inbox_keep: Duration,
}

pub struct AppState {
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub authors: Authors,
    pub cursor: CursorCodec,
    pub settings: CacheSettings,
    pub fills: Fills,
    pub inbox: crate::feeds::InboxHorizon,
}

/// One fill at a time per cache entry (see [`SingleFlight`]).
#[derive(Default)]
pub struct Fills {
    pub following: SingleFlight<Vec<FeedRow>>,
    pub popular: SingleFlight<RankedPage>,
    pub most_commented: SingleFlight<Vec<FeedRow>>,
}
