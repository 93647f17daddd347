//! member's rules, free of HTTP: what a valid email, password and nickname are, how
//! passwords are hashed, how tokens are issued, rotated and revoked, and how provider logins
//! map to members.

pub mod keys;
pub mod oauth;
pub mod passwords;
pub mod profile;
pub mod refresh;
pub mod tokens;
