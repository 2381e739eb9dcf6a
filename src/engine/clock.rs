//! Time, in one place: the wall clock that expiry times are read against, and
//! the backoff schedule every reconnect and retry follows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// First wait before a reconnect or retry.
pub const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest wait between two attempts: a server that comes back is found
/// within this long.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How long to wait before attempt `n` (0-based): doubling from
/// [`BACKOFF_START`] up to [`BACKOFF_MAX`].
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_millis(50));
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(5), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
        assert!(now_ms() > 1_600_000_000_000);
    }
}
