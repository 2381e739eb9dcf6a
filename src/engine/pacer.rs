//! `--rate`: a token bucket that holds at most 10 ms of keys, so the limit
//! holds over any window, not only on average since the start. (An allowance
//! that accrued from the start let a source that stalled for 20 s take a
//! burst of 20 s of keys at full speed the moment it came back.)

use std::time::{Duration, Instant};

/// The most the bucket holds, as time at the given rate.
const BURST: Duration = Duration::from_millis(10);

/// Spreads keys evenly over time.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// At most `rate` keys per second (`rate` > 0).
    pub fn new(rate: u64, now: Instant) -> Pacer {
        let rate = rate.max(1) as f64;
        let capacity = (rate * BURST.as_secs_f64()).max(1.0);
        Pacer {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Keys that may be issued now.
    pub fn allowance(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.max(0.0) as u64
    }

    /// Records `n` keys issued.
    pub fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }

    /// How long until the next key may be issued.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issues as fast as allowed from `from` for `span`, in 1 ms steps.
    fn issued(p: &mut Pacer, from: Instant, span: Duration) -> u64 {
        let mut total = 0;
        let mut t = from;
        while t <= from + span {
            let n = p.allowance(t);
            p.take(n);
            total += n;
            t += Duration::from_millis(1);
        }
        total
    }

    #[test]
    fn the_rate_holds_over_any_window() {
        let start = Instant::now();
        let mut p = Pacer::new(10_000, start);
        let first = issued(&mut p, start, Duration::from_secs(1));
        // One second at 10k/s, plus the 10 ms burst the bucket starts with.
        assert!((10_000..=10_110).contains(&first), "{first}");
    }

    #[test]
    fn a_stall_earns_no_burst() {
        let start = Instant::now();
        let mut p = Pacer::new(10_000, start);
        let n = p.allowance(start);
        p.take(n);
        // Twenty seconds of nothing: only the bucket's 10 ms refill.
        let later = start + Duration::from_secs(20);
        assert_eq!(p.allowance(later), 100);
        let window = issued(&mut p, later, Duration::from_millis(100));
        assert!(
            window <= 100 + 1_000 + 10,
            "{window} in 100 ms after a stall"
        );
    }

    #[test]
    fn wait_says_when_the_next_key_is_due() {
        let start = Instant::now();
        let mut p = Pacer::new(100, start);
        let n = p.allowance(start);
        assert_eq!(n, 1, "a slow rate still lets one key through");
        p.take(n);
        let w = p.wait(start);
        assert!(
            w > Duration::from_millis(9) && w <= Duration::from_millis(10),
            "{w:?}"
        );
    }
}
