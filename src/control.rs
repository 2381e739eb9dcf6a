//! The run-wide stop switch: set by a signal or by a loop that failed, seen by
//! every loop within one poll timeout (or at once, through the wakers).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::Waker;

/// Shared by the main thread and both loops.
#[derive(Debug)]
pub struct Control {
    stop: AtomicBool,
    wakers: Vec<Arc<Waker>>,
}

impl Control {
    /// A switch that wakes `wakers` when flipped.
    pub fn new(wakers: Vec<Arc<Waker>>) -> Control {
        Control {
            stop: AtomicBool::new(false),
            wakers,
        }
    }

    /// Asks every loop to stop: the source stops reading, the target finishes
    /// the writes already in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for waker in &self.wakers {
            let _ = waker.wake();
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
