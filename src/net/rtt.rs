//! How far away a server is: the round-trip time of one connection, from
//! the latency of its replies.
//!
//! A sample is taken whenever commands are queued on a connection that owes
//! nothing: the time until the first reply is then one round trip plus the
//! server's time for one command, with nothing of ours queued ahead of it.
//! The start-up handshake is always such a sample; later ones come when the
//! connection goes idle (between SCAN pages, at a lull of the source). Under
//! a full pipeline no sample is taken, because a reply then also waits for
//! everything queued ahead of it, which says how busy the server is, not how
//! far it is.
//!
//! The estimate is the smallest sample since the connection was opened: the
//! path rarely gets shorter, and a sample can only be inflated (by the
//! server's work, by our own loop), never deflated. A reconnect starts over,
//! since it may reach another node or route.

use std::time::{Duration, Instant};

/// The round-trip estimate of one connection.
#[derive(Debug, Default, Clone)]
pub struct Rtt {
    /// The smallest sample so far.
    min: Option<Duration>,
    /// The reply that ends the sample being taken, and when it began.
    pending: Option<(u64, Instant)>,
}

impl Rtt {
    /// Forgets everything: a new connection.
    pub fn reset(&mut self) {
        *self = Rtt::default();
    }

    /// Commands were queued on a connection owing nothing; `first_reply` is
    /// the index (in replies taken) of the first reply they will get.
    pub fn start(&mut self, first_reply: u64, now: Instant) {
        if self.pending.is_none() {
            self.pending = Some((first_reply, now));
        }
    }

    /// Reply number `index` arrived at `now`.
    pub fn replied(&mut self, index: u64, now: Instant) {
        let Some((wanted, since)) = self.pending else {
            return;
        };
        if index < wanted {
            return;
        }
        self.pending = None;
        let sample = now.saturating_duration_since(since);
        self.min = Some(self.min.map_or(sample, |m| m.min(sample)));
    }

    /// The estimate, or zero before the first sample (the windows then keep
    /// their near-server sizes until a reply says otherwise).
    pub fn estimate(&self) -> Duration {
        self.min.unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_smallest_sample() {
        let t0 = Instant::now();
        let mut rtt = Rtt::default();
        assert_eq!(rtt.estimate(), Duration::ZERO);
        rtt.start(1, t0);
        rtt.replied(1, t0 + Duration::from_millis(30));
        assert_eq!(rtt.estimate(), Duration::from_millis(30));
        rtt.start(5, t0 + Duration::from_millis(100));
        rtt.replied(5, t0 + Duration::from_millis(120));
        rtt.start(9, t0 + Duration::from_millis(200));
        rtt.replied(9, t0 + Duration::from_millis(290));
        assert_eq!(rtt.estimate(), Duration::from_millis(20));
    }

    #[test]
    fn only_the_reply_that_ends_a_sample_counts() {
        let t0 = Instant::now();
        let mut rtt = Rtt::default();
        rtt.start(3, t0);
        // A second start while one is pending does not move its beginning.
        rtt.start(4, t0 + Duration::from_millis(5));
        rtt.replied(2, t0 + Duration::from_millis(1));
        assert_eq!(rtt.estimate(), Duration::ZERO);
        rtt.replied(3, t0 + Duration::from_millis(10));
        assert_eq!(rtt.estimate(), Duration::from_millis(10));
        rtt.reset();
        assert_eq!(rtt.estimate(), Duration::ZERO);
    }
}
