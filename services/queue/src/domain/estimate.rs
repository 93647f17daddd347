//! The estimated wait shown in position events (Cloudflare's and AWS's waiting rooms show
//! one): the queue moves at the rate members were admitted from it over the recent window.

use std::time::Duration;

/// Seconds until `position` is admitted if the queue keeps moving at the rate of
/// `admitted_in_window` admissions per `window`; `None` when nobody was admitted from the
/// queue in the window (no rate to go by yet).
pub fn estimated_wait_seconds(
    position: u64,
    admitted_in_window: u64,
    window: Duration,
) -> Option<u64> {
    if admitted_in_window == 0 || window.is_zero() {
        return None;
    }
    let per_second = admitted_in_window as f64 / window.as_secs_f64();
    Some((position as f64 / per_second).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_over_rate_rounded_up() {
        let minute = Duration::from_secs(60);
        assert_eq!(estimated_wait_seconds(30, 60, minute), Some(30));
        assert_eq!(estimated_wait_seconds(1, 120, minute), Some(1));
        assert_eq!(estimated_wait_seconds(10, 7, minute), Some(86));
    }

    #[test]
    fn no_admissions_means_no_estimate() {
        assert_eq!(estimated_wait_seconds(5, 0, Duration::from_secs(60)), None);
    }
}
