//! What handlers share.

use std::sync::Arc;
use std::time::Duration;

use ratelimit::{Limit, RateLimiter};
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;

use crate::config::UploadLimits;
use crate::domain::ProcessingLimits;
use crate::store::objects::ObjectStorage;

pub struct AppState {
    pub db: DatabaseConnection,
    pub objects: ObjectStorage,
    pub limiter: RateLimiter,
    /// Uploads per member per minute.
    pub upload_rate: Limit,
    pub limits: UploadLimits,
    pub processing: Arc<ProcessingLimits>,
    /// Slots for CPU-heavy work (hashing, decoding, encoding) on blocking threads.
    pub cpu_slots: Arc<Semaphore>,
    pub cache_max_age: Duration,
}
