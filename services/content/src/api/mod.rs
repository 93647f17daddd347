//! content's handlers.

pub mod comments;
pub mod idempotent;
pub mod internal;
pub mod likes;
pub mod posts;
