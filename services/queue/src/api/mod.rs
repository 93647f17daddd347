//! HTTP handlers: thin — read the caller the edge verified, call the room, shape the answer.

pub mod admin;
pub mod queue;
