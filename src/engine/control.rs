//! Run-wide switches shared by the main thread and every loop, each seen
//! within one poll timeout (or at once, through the wakers):
//! - stop: set by a signal or by a loop that failed;
//! - the copy epoch: bumped when a restarted server makes the copy start
//!   over, so both loops drop what belongs to the earlier pass;
//! - finished: the target has acknowledged everything, so the source (which
//!   waits, in case the target restarts late and the copy must start over)
//!   may close.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;

use mio::Waker;

use crate::progress::Stats;

/// Shared by the main thread and the loops.
#[derive(Debug)]
pub struct Control {
    stop: AtomicBool,
    drain: AtomicBool,
    finished: AtomicBool,
    epoch: AtomicU16,
    wakers: Vec<Arc<Waker>>,
}

impl Control {
    /// Switches that wake `wakers` when flipped.
    pub fn new(wakers: Vec<Arc<Waker>>) -> Control {
        Control {
            stop: AtomicBool::new(false),
            drain: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            epoch: AtomicU16::new(0),
            wakers,
        }
    }

    /// Asks every loop to stop: the source stops reading, the target finishes
    /// the writes already in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// `--live`: stop following changes, apply the ones already seen, then
    /// end as a finished copy does (the normal end of a live sync).
    pub fn drain(&self) {
        self.drain.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn draining(&self) -> bool {
        self.drain.load(Ordering::Relaxed)
    }

    /// The target is done: everything of the current epoch is acknowledged.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// The current pass of the copy.
    pub fn epoch(&self) -> u16 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The copy starts over from the beginning: the counters go back to zero
    /// (what was counted may be gone) and every loop learns the new epoch.
    pub fn start_over(&self, stats: &Stats) -> u16 {
        stats.reset();
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        self.wake();
        epoch
    }

    fn wake(&self) {
        for waker in &self.wakers {
            let _ = waker.wake();
        }
    }
}
