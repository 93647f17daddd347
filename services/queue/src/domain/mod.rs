//! The gateway's and the waiting room's rules, free of HTTP and Redis types: which paths
//! match which rules, rate-limit rules, the wait estimate, and the admission token.

pub mod admission;
pub mod estimate;
pub mod limits;
pub mod paths;
pub mod request_path;
pub mod routes;
