//! Whether one more connection to a server helped.
//!
//! rump adds a connection to a far server when one connection's round trip
//! holds about the kernel's largest socket buffer
//! ([`crate::engine::scan::ScanRole::connections_wanted`]). That sign is
//! the same when the server itself is the limit, and there a connection
//! more only costs. So each one added is a trial: the bytes a second all the
//! server's connections carry are compared before and after, and a
//! connection that did not bring at least 15% more is given up
//! (nothing more goes to it) and no other is tried. The rate before is
//! taken only once it is steady (two samples a second apart within
//! 10% of each other): a copy still ramping up would otherwise make
//! any connection look like a gain.

use std::time::{Duration, Instant};

/// Least gain for an added connection to be kept.
const GAIN: f64 = 1.15;
/// Two samples of the rate before a trial this close are a steady rate.
const STEADY: f64 = 0.10;
/// The rate before a trial is measured over at least this long.
const SAMPLE: Duration = Duration::from_secs(1);
/// A trial lasts at least this long (the new connection has to open and
/// its windows to grow), and at least eight round trips.
const TRIAL: Duration = Duration::from_millis(1500);

/// The trials of one server's connections.
#[derive(Debug, Default, Clone)]
pub struct Spread {
    /// The last sample of bytes done, for the rate before a trial.
    sample: Option<(Instant, u64)>,
    /// Bytes a second over the last [`SAMPLE`], or after the last trial
    /// kept.
    before: f64,
    /// The last two samples agree: `before` is a steady rate.
    steady: bool,
    /// A connection is on trial since then, with this many bytes done.
    trial: Option<(Instant, u64)>,
    /// A connection brought nothing: no more are tried.
    capped: bool,
}

/// What a trial showed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The connection brought more: keep it; another may be tried.
    Keep,
    /// It did not: give it up; no other is tried.
    GiveUp,
}

impl Spread {
    /// Takes the bytes the server's connections have done so far.
    pub fn observe(&mut self, now: Instant, bytes: u64) {
        if self.trial.is_some() {
            return;
        }
        match self.sample {
            Some((at, done)) if now.saturating_duration_since(at) >= SAMPLE => {
                let secs = now.saturating_duration_since(at).as_secs_f64();
                let rate = bytes.saturating_sub(done) as f64 / secs;
                self.steady =
                    rate > 0.0 && (rate - self.before).abs() <= STEADY * rate.max(self.before);
                self.before = rate;
                self.sample = Some((now, bytes));
            }
            Some(_) => {}
            None => self.sample = Some((now, bytes)),
        }
    }

    /// True when a connection may be added now.
    pub fn may_add(&self) -> bool {
        !self.capped && self.trial.is_none() && self.steady
    }

    /// A connection was added at `now`, `bytes` being done so far.
    pub fn added(&mut self, now: Instant, bytes: u64) {
        self.trial = Some((now, bytes));
    }

    /// The trial's verdict once it has lasted long enough for a server
    /// `rtt` away; `None` before.
    pub fn verdict(&mut self, now: Instant, bytes: u64, rtt: Duration) -> Option<Verdict> {
        let (since, done) = self.trial?;
        let elapsed = now.saturating_duration_since(since);
        if elapsed < TRIAL.max(rtt * 8) {
            return None;
        }
        let after = bytes.saturating_sub(done) as f64 / elapsed.as_secs_f64();
        self.trial = None;
        self.sample = Some((now, bytes));
        self.steady = false;
        if after >= self.before * GAIN {
            self.before = after;
            Some(Verdict::Keep)
        } else {
            self.capped = true;
            Some(Verdict::GiveUp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    #[test]
    fn a_connection_that_brings_more_is_kept_and_one_that_does_not_is_given_up() {
        let s = Duration::from_secs(1);
        let t = |secs: f64| Instant::now() + Duration::from_secs_f64(secs);
        let t0 = t(0.0);
        let at = |secs: u32| t0 + s * secs;
        let mut spread = Spread::default();
        spread.observe(at(0), 0);
        assert!(!spread.may_add(), "nothing measured yet");
        spread.observe(at(1), 20 * MB);
        assert!(!spread.may_add(), "one sample");
        spread.observe(at(2), 50 * MB);
        assert!(!spread.may_add(), "still ramping up: 20 then 30 MB/s");
        spread.observe(at(3), 80 * MB);
        assert!(spread.may_add(), "30 then 30 MB/s");
        spread.added(at(3), 80 * MB);
        assert!(!spread.may_add(), "one trial at a time");
        assert_eq!(spread.verdict(at(4), 130 * MB, Duration::ZERO), None);
        // 60 MB/s after against 30 before.
        assert_eq!(
            spread.verdict(at(5), 200 * MB, Duration::ZERO),
            Some(Verdict::Keep)
        );
        assert!(!spread.may_add(), "the new rate is not yet steady");
        spread.observe(at(6), 260 * MB);
        assert!(spread.may_add(), "60 then 60 MB/s");
        spread.added(at(6), 260 * MB);
        // 63 MB/s against 60: not enough.
        let given_up = spread.verdict(at(8), 386 * MB, Duration::ZERO);
        assert_eq!(given_up, Some(Verdict::GiveUp));
        spread.observe(at(9), 446 * MB);
        spread.observe(at(10), 506 * MB);
        assert!(!spread.may_add(), "no other is tried");
    }

    #[test]
    fn a_trial_lasts_eight_round_trips_at_least() {
        let t0 = Instant::now();
        let mut spread = Spread::default();
        spread.observe(t0, 0);
        spread.observe(t0 + Duration::from_secs(1), MB);
        spread.observe(t0 + Duration::from_secs(2), 2 * MB);
        assert!(spread.may_add());
        spread.added(t0 + Duration::from_secs(1), MB);
        let rtt = Duration::from_millis(400);
        let at = t0 + Duration::from_secs(3);
        assert_eq!(spread.verdict(at, 10 * MB, rtt), None, "2 s < 3.2 s");
        assert!(spread.verdict(at + rtt * 4, 20 * MB, rtt).is_some());
    }
}
