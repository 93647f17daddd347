//! Every Redis key and channel the waiting room uses, in one place. Each carries
//! `REDIS_KEY_PREFIX`, so replicas of one deployment share them and tests never collide.

/// The queue: member id → ticket (from [`counter`]); rank + 1 is the position.
pub fn wait(prefix: &str) -> String {
    format!("{prefix}queue:wait")
}

/// The ticket counter (`INCR`), so a re-registration always goes to the back.
pub fn counter(prefix: &str) -> String {
    format!("{prefix}queue:counter")
}

/// Admitted members: member id → last activity (ms since the epoch, Redis' clock).
pub fn allowed_in(prefix: &str) -> String {
    format!("{prefix}allowedIn:users")
}

/// Waiting members → their last sign of life (SSE tick, status poll, lineup), for
/// abandonment.
pub fn seen(prefix: &str) -> String {
    format!("{prefix}queue:seen")
}

/// Recent admissions from the queue (score: when), for the estimated wait.
pub fn admission_log(prefix: &str) -> String {
    format!("{prefix}queue:admission_log")
}

/// The scheduler's single-runner lock (value: the replica that holds it).
pub fn scheduler_lock(prefix: &str) -> String {
    format!("{prefix}queue:scheduler:lock")
}

/// Scheduler bookkeeping: `runs`, `last_instance`, `last_run_ms`.
pub fn scheduler_stats(prefix: &str) -> String {
    format!("{prefix}queue:scheduler:stats")
}

/// Pub/sub channel: comma-separated ids of members just admitted from the queue.
pub fn admissions_channel(prefix: &str) -> String {
    format!("{prefix}queue:admissions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_seeds_names_behind_the_prefix() {
        assert_eq!(wait("t1:"), "t1:queue:wait");
        assert_eq!(counter(""), "queue:counter");
        assert_eq!(allowed_in("p:"), "p:allowedIn:users");
        assert_eq!(admissions_channel("p:"), "p:queue:admissions");
    }
}
