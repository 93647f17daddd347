//! content's rules, free of HTTP: what valid posts and comments are, and what each write
//! tells the rest of the system.

pub mod events;
pub mod input;
