//! What can go wrong calling a downstream. Every error names the downstream, and says
//! whether the downstream is unavailable (map it to a 503 or a degraded answer) or the
//! request itself was wrong (a bug on our side).

use std::time::Duration;

use reqwest::StatusCode;

/// A call that did not produce a usable answer. 4xx answers are not errors: they come
/// back as the `reqwest::Response`, since only the caller knows what a 404 means to it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The breaker is open (or half-open with all probes out): nothing was sent.
    #[error("{downstream} is unavailable: circuit open, call not attempted")]
    CircuitOpen {
        downstream: String,
        /// How long until the breaker lets probes through (zero when half-open).
        retry_after: Duration,
    },
    /// The client-side rate limit had no permit in time: nothing was sent.
    #[error("call to {downstream} refused by the client-side rate limit")]
    RateLimited { downstream: String },
    /// No answer within the attempt's timeout, on the last attempt.
    #[error("{downstream} did not answer within {timeout:?} (attempt {attempts})")]
    Timeout {
        downstream: String,
        timeout: Duration,
        attempts: u32,
    },
    /// No connection could be made, on the last attempt.
    #[error("cannot connect to {downstream} (attempt {attempts})")]
    Connect {
        downstream: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    /// A 5xx answer, on the last attempt.
    #[error("{downstream} answered {status} (attempt {attempts})")]
    Status {
        downstream: String,
        status: StatusCode,
        attempts: u32,
    },
    /// The exchange broke some other way (connection reset, malformed answer).
    #[error("call to {downstream} failed (attempt {attempts})")]
    Transport {
        downstream: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    /// The request could not be built (bad header value, unserialisable body, bad path).
    #[error("invalid request to {downstream}: {reason}")]
    InvalidRequest { downstream: String, reason: String },
}

impl CallError {
    /// The downstream this call was for.
    pub fn downstream(&self) -> &str {
        match self {
            CallError::CircuitOpen { downstream, .. }
            | CallError::RateLimited { downstream }
            | CallError::Timeout { downstream, .. }
            | CallError::Connect { downstream, .. }
            | CallError::Status { downstream, .. }
            | CallError::Transport { downstream, .. }
            | CallError::InvalidRequest { downstream, .. } => downstream,
        }
    }

    /// `true` when the downstream could not serve the call (or we chose not to ask it):
    /// answer 503 or serve degraded data. `false` only for a request we built wrong, which
    /// is our bug (a 500).
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, CallError::InvalidRequest { .. })
    }

    /// `true` when nothing was sent because of local protection (breaker or rate limit).
    pub fn is_rejected_locally(&self) -> bool {
        matches!(
            self,
            CallError::CircuitOpen { .. } | CallError::RateLimited { .. }
        )
    }

    /// The attempt the call ended on (0 for local rejections and invalid requests).
    pub fn attempts(&self) -> u32 {
        match self {
            CallError::Timeout { attempts, .. }
            | CallError::Connect { attempts, .. }
            | CallError::Status { attempts, .. }
            | CallError::Transport { attempts, .. } => *attempts,
            CallError::CircuitOpen { .. }
            | CallError::RateLimited { .. }
            | CallError::InvalidRequest { .. } => 0,
        }
    }

    /// A hint for a `Retry-After` header: the breaker's remaining wait when it is open.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A client that cannot be built: bad base URL, impossible settings, or no HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{downstream}: base URL `{url}` must be http(s) and able to carry paths")]
    BaseUrl { downstream: String, url: String },
    #[error("{downstream}: {reason}")]
    Settings { downstream: String, reason: String },
    #[error("{downstream}: cannot build the HTTP client")]
    Http {
        downstream: String,
        #[source]
        source: reqwest::Error,
    },
}
