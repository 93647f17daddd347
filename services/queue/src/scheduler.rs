//! The waiting-room scheduler (the seed's ShedLock job): every `QUEUE_SCHEDULER_INTERVAL_MS`
//! each replica tries to run one tick, and a Redis lock taken in the same script (`SET NX
//! PX`, held for 90 % of the interval and never released early) lets exactly one of them
//! run it. A tick expires admissions idle past `ALLOWED_IN_DURATION_SECONDS`, drops waiting
//! ghosts (no stream, no poll for `QUEUE_ABANDON_AFTER_SECONDS`), and admits as many from
//! the head of the queue as there are free slots; admissions are announced on pub/sub.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::room::WaitingRoom;

/// How long a won lock keeps other replicas out: most of an interval, so timers that drift
/// apart still yield one run per interval, while a replica that dies mid-tick blocks the
/// next one for less than an interval.
pub fn lock_period(interval: Duration) -> Duration {
    (interval * 9 / 10).max(Duration::from_millis(1))
}

pub async fn run(room: WaitingRoom, interval: Duration, shutdown: CancellationToken) {
    let instance = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
    let lock = lock_period(interval);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match room.schedule(&instance, lock).await {
            Ok(Some(tick)) => {
                metrics::counter!("queue_scheduler_runs_total").increment(1);
                metrics::counter!("queue_expired_total").increment(tick.expired);
                metrics::counter!("queue_abandoned_total").increment(tick.abandoned);
                metrics::counter!("queue_admitted_total", "via" => "scheduler")
                    .increment(tick.admitted);
                metrics::gauge!("queue_waiting").set(tick.waiting as f64);
                metrics::gauge!("queue_allowed_in").set(tick.allowed as f64);
                if tick.expired + tick.abandoned + tick.admitted > 0 {
                    tracing::info!(
                        expired = tick.expired,
                        abandoned = tick.abandoned,
                        admitted = tick.admitted,
                        waiting = tick.waiting,
                        allowed = tick.allowed,
                        "scheduler tick"
                    );
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = format!("{err:#}"), "scheduler tick failed"),
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "queue".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_holds_most_of_an_interval() {
        assert_eq!(
            lock_period(Duration::from_secs(1)),
            Duration::from_millis(900)
        );
        assert_eq!(
            lock_period(Duration::from_millis(10)),
            Duration::from_millis(9)
        );
    }
}
