//! Persistence: the waiting room's Redis keys and the Lua scripts that change them.

pub mod keys;
pub mod room;
