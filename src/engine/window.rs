//! How much one connection keeps in flight: enough to cover its
//! bandwidth-delay product, sized from the round-trip time
//! ([`crate::net::rtt`]) and the throughput the connection shows.
//!
//! A window that carries `rate` units a second across a round trip of
//! `rtt` needs `rate × rtt` units in flight; it is given twice that, so
//! that a window that is itself the limit doubles at each measurement
//! (the rate it shows is then `window / rtt`) until the server or the link
//! is the limit. The rate counted is never below [`GUESS_KEYS_PER_SEC`],
//! what one connection carries near its server: a window sized to a lower
//! rate would make that rate, since the SCAN chain feeding it takes more
//! than a round trip per page, and the doubling would never start. It never
//! goes below the near-server default that the loopback benchmarks chose
//! (so nothing changes on loopback, where the product is a few keys), never
//! above a cap that bounds memory, and it shrinks slowly when the rate
//! falls, so a pause of the source does not throw away what the ramp-up
//! found.

use std::time::{Duration, Instant};

/// Throughput assumed before any is measured, and the least counted after,
/// in keys a second: about what one connection carries on loopback here
/// (BENCHMARKS.md). A far server then starts with a window near its need
/// rather than ramping up from the near-server default, which at 80 ms
/// takes seconds.
pub const GUESS_KEYS_PER_SEC: f64 = 200_000.0;

/// Shortest measurement: below it, a rate is noise (a few batches).
const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// Fewest units a measurement counts, unless it lasts [`MAX_INTERVAL`]:
/// 4 MiB values arrive a few per 50 ms, and two or five in one interval
/// is not a rate.
const MIN_UNITS: u64 = 16;
/// Longest measurement.
const MAX_INTERVAL: Duration = Duration::from_millis(500);

/// A window of units in flight (keys, or commands) on one connection.
#[derive(Debug, Clone)]
pub struct Window {
    floor: usize,
    cap: usize,
    /// `--pipeline` was given: the window is what the user said.
    fixed: bool,
    size: usize,
    /// Units a second: measured, or [`GUESS_KEYS_PER_SEC`] before that.
    rate: f64,
    done: u64,
    since: Instant,
    rtt: Duration,
    /// `rate` was measured (not the guess).
    measured: bool,
}

impl Window {
    /// A window sized by itself, between `floor` and `cap`.
    pub fn auto(floor: usize, cap: usize) -> Window {
        let floor = floor.max(1);
        Window {
            floor,
            cap: cap.max(floor),
            fixed: false,
            size: floor,
            rate: GUESS_KEYS_PER_SEC,
            done: 0,
            since: Instant::now(),
            rtt: Duration::ZERO,
            measured: false,
        }
    }

    /// A window of exactly `size` units (an explicit override).
    pub fn fixed(size: usize) -> Window {
        Window {
            fixed: true,
            ..Window::auto(size, size)
        }
    }

    /// Units that may be in flight now.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many connections to one server are wanted, `now` being used, by
    /// a connection whose units average `unit_bytes`: one more when the
    /// bytes its round trip holds at the measured rate come within 90% of
    /// what one TCP connection can have in flight (`per_connection`, the
    /// kernel's largest socket buffer), which is then probably what holds
    /// it back; at most `most`. Before any measurement, `now`.
    pub fn connections_wanted(
        &self,
        unit_bytes: usize,
        per_connection: usize,
        now: usize,
        most: usize,
    ) -> usize {
        let Some(rate) = self.measured_rate() else {
            return now;
        };
        let in_flight = rate * unit_bytes as f64 * self.rtt.as_secs_f64();
        if in_flight >= 0.9 * per_connection as f64 {
            (now + 1).min(most)
        } else {
            now
        }
    }

    /// Units a second measured over the last interval; `None` before the
    /// first measurement.
    pub fn measured_rate(&self) -> Option<f64> {
        self.measured.then_some(self.rate)
    }

    /// The round-trip time the window was last sized for.
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// Units wanted in flight to carry the rate across the round trip:
    /// twice the bandwidth-delay product.
    pub fn demand(&self) -> f64 {
        2.0 * self.rate.max(GUESS_KEYS_PER_SEC) * self.rtt.as_secs_f64()
    }

    /// `n` units completed (their replies arrived).
    pub fn completed(&mut self, n: u64) {
        self.done += n;
    }

    /// Takes the connection's current round-trip estimate and, once a
    /// measurement interval (two round trips, at least 50 ms) has passed,
    /// the rate it showed; resizes the window.
    pub fn update(&mut self, rtt: Duration, now: Instant) {
        let first = self.rtt.is_zero() && !rtt.is_zero();
        self.rtt = rtt;
        if first {
            // Measure from the first round trip known: before it the
            // connection was still being opened.
            self.since = now;
            self.done = 0;
        }
        let elapsed = now.saturating_duration_since(self.since);
        let enough = self.done >= MIN_UNITS || elapsed >= MAX_INTERVAL;
        if elapsed >= MIN_INTERVAL.max(rtt * 2) && enough {
            let rate = self.done as f64 / elapsed.as_secs_f64();
            // A measured rate falls by a quarter at most per interval, as
            // the window does: one slow interval is not a slow server.
            self.rate = if self.measured {
                rate.max(self.rate * 0.75)
            } else {
                rate
            };
            self.measured = true;
            self.done = 0;
            self.since = now;
        } else if !first {
            return;
        }
        if self.fixed {
            return;
        }
        let wanted = (self.demand().ceil() as usize).clamp(self.floor, self.cap);
        self.size = if wanted >= self.size {
            wanted
        } else {
            // Shrink by a quarter at most per interval.
            wanted.max(self.size - self.size / 4)
        };
    }

    /// A new connection: the path may be another; keep the rate, take the
    /// new round trip when it is measured.
    pub fn restart(&mut self, now: Instant) {
        self.rtt = Duration::ZERO;
        self.done = 0;
        self.since = now;
        if !self.fixed {
            self.size = self.floor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn near_servers_keep_the_floor() {
        let t0 = Instant::now();
        let mut w = Window::auto(2048, 1 << 17);
        w.update(MS / 20, t0);
        assert_eq!(w.size(), 2048);
        w.completed(40_000);
        w.update(MS / 20, t0 + 100 * MS);
        assert_eq!(w.size(), 2048, "400k a second × 50 µs is 20 units");
    }

    #[test]
    fn a_far_server_starts_from_the_guess_and_a_limiting_window_doubles() {
        let t0 = Instant::now();
        let mut w = Window::auto(2048, 1 << 20);
        let rtt = 80 * MS;
        w.update(rtt, t0);
        assert_eq!(w.size(), 32_000, "2 × 200k a second × 80 ms");
        // The window is the limit: it carries size / rtt.
        let interval = 2 * rtt;
        w.completed((32_000.0 / 0.08 * 0.16) as u64);
        w.update(rtt, t0 + interval);
        assert_eq!(w.size(), 64_000);
    }

    #[test]
    fn the_window_stays_between_floor_and_cap_and_shrinks_slowly() {
        let t0 = Instant::now();
        let mut w = Window::auto(100, 10_000);
        w.update(MS, t0);
        assert_eq!(w.size(), 400, "2 × 200k a second × 1 ms");
        w.completed(1_000_000);
        w.update(MS, t0 + 100 * MS);
        assert_eq!(w.size(), 10_000, "capped");
        // Nothing completes: an interval ends only after 500 ms, and each
        // takes a quarter at most off the rate and off the window.
        w.update(MS, t0 + 300 * MS);
        assert_eq!(w.size(), 10_000, "not an interval yet");
        let mut last = w.size();
        for i in 1..40 {
            w.update(MS, t0 + 100 * MS + i * 500 * MS);
            assert!(
                w.size() <= last && w.size() >= last - last / 4,
                "{last} -> {}",
                w.size()
            );
            last = w.size();
        }
        assert_eq!(w.size(), 400, "the guessed rate's need, never less");
        let mut near = Window::auto(100, 10_000);
        near.update(MS / 100, t0);
        assert_eq!(near.size(), 100, "floor");
    }

    #[test]
    fn a_measurement_counts_enough_units() {
        let t0 = Instant::now();
        let mut w = Window::auto(1, 1 << 20);
        w.update(20 * MS, t0);
        // Three 4 MiB values in 60 ms are not yet a rate.
        w.completed(3);
        w.update(20 * MS, t0 + 60 * MS);
        assert_eq!(w.measured_rate(), None);
        w.completed(13);
        w.update(20 * MS, t0 + 320 * MS);
        assert_eq!(w.measured_rate(), Some(50.0));
    }

    #[test]
    fn a_fixed_window_never_moves() {
        let t0 = Instant::now();
        let mut w = Window::fixed(64);
        w.update(80 * MS, t0);
        w.completed(1_000_000);
        w.update(80 * MS, t0 + Duration::from_secs(1));
        assert_eq!(w.size(), 64);
    }
}
