//! The small vocabulary every dailyfeed service shares: what an event looks like, where it is
//! published, how a consumer recognises a duplicate, which headers carry auth signals, what an
//! access token claims, and the one JSON error body. Types and pure functions only — no I/O.

pub mod auth;
pub mod dedup;
pub mod error;
pub mod events;
pub mod headers;
pub mod images;
pub mod posts;
pub mod redis_keys;
pub mod topics;

pub use error::{ErrorBody, FieldError};
pub use events::{EventEnvelope, EventType, TraceContext};
pub use topics::{TopicName, TopicZone};
