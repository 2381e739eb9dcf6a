//! The bounded channel that carries batches from the source thread to the
//! target thread. The only module that touches crossbeam.
//!
//! The channel is bounded twice: by batches (crossbeam's capacity) and by
//! bytes. Each payload is a slice that pins the read chunk it came from, so the
//! byte budget, not the key count, is what bounds memory: a source that reads
//! faster than the target writes parks until the target releases bytes.
//!
//! Each side parks in its own `mio::Poll`; the other side wakes it through its
//! `Waker` only when it said it was parked, so a busy run costs no wake-up
//! syscalls at all.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use mio::Waker;

use crate::engine::item::Batch;

/// State both ends share.
#[derive(Debug)]
struct Shared {
    /// Bytes sent and not yet released by the target.
    pinned: AtomicUsize,
    /// 1 + the copy epoch the source finished reading
    /// ([`BatchSender::complete`]); 0 while it has not.
    completed: AtomicU32,
    max_bytes: usize,
    source_parked: AtomicBool,
    target_parked: AtomicBool,
    source_waker: Arc<Waker>,
    target_waker: Arc<Waker>,
}

/// The source's end.
#[derive(Debug)]
pub struct BatchSender {
    tx: Sender<Batch>,
    shared: Arc<Shared>,
}

/// The target's end.
#[derive(Debug)]
pub struct BatchReceiver {
    rx: Receiver<Batch>,
    shared: Arc<Shared>,
}

/// Why [`BatchSender::try_send`] did not send.
#[derive(Debug)]
pub enum SendError {
    /// No room now; the batch comes back. The target will wake the source.
    Full(Batch),
    /// The target is gone (it failed or was interrupted).
    Disconnected,
}

/// Why [`BatchReceiver::try_recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing now; the source will wake the target.
    Empty,
    /// The source read everything of the epoch asked about, and everything
    /// it sent was received.
    Done,
    /// The source stopped before the end (it failed or was stopped), and
    /// everything it sent was received. A server target keeps what it wrote;
    /// a dump file must not be completed.
    Abandoned,
}

/// A channel of at most `max_batches` batches and about `max_bytes` pinned
/// bytes (a single batch larger than the budget still passes, alone).
pub fn channel(
    max_batches: usize,
    max_bytes: usize,
    source_waker: Arc<Waker>,
    target_waker: Arc<Waker>,
) -> (BatchSender, BatchReceiver) {
    let (tx, rx) = crossbeam_channel::bounded(max_batches);
    let shared = Arc::new(Shared {
        pinned: AtomicUsize::new(0),
        completed: AtomicU32::new(0),
        max_bytes,
        source_parked: AtomicBool::new(false),
        target_parked: AtomicBool::new(false),
        source_waker,
        target_waker,
    });
    (
        BatchSender {
            tx,
            shared: Arc::clone(&shared),
        },
        BatchReceiver { rx, shared },
    )
}

impl BatchSender {
    /// Sends `batch` if the budget allows; on `Full` the source has been marked
    /// parked, and the target wakes it when it releases bytes.
    pub fn try_send(&self, batch: Batch) -> Result<(), SendError> {
        let shared = &self.shared;
        if !self.has_room(batch.bytes) {
            shared.source_parked.store(true, Ordering::SeqCst);
            // Re-check after parking: the target may have released meanwhile.
            if !self.has_room(batch.bytes) {
                return Err(SendError::Full(batch));
            }
            shared.source_parked.store(false, Ordering::SeqCst);
        }
        let bytes = batch.bytes;
        shared.pinned.fetch_add(bytes, Ordering::SeqCst);
        match self.tx.try_send(batch) {
            Ok(()) => {
                if shared.target_parked.swap(false, Ordering::SeqCst) {
                    let _ = shared.target_waker.wake();
                }
                Ok(())
            }
            Err(TrySendError::Full(batch)) => {
                shared.pinned.fetch_sub(bytes, Ordering::SeqCst);
                shared.source_parked.store(true, Ordering::SeqCst);
                // The target drains before parking, so a full channel will
                // be released and the source woken.
                if self.tx.is_full() {
                    Err(SendError::Full(batch))
                } else {
                    shared.source_parked.store(false, Ordering::SeqCst);
                    self.try_send(batch)
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                shared.pinned.fetch_sub(bytes, Ordering::SeqCst);
                Err(SendError::Disconnected)
            }
        }
    }

    /// Marks the stream complete for copy `epoch`: everything the source had
    /// is sent. Without it, dropping the sender reads as
    /// [`RecvError::Abandoned`]. A later epoch (the copy started over) is not
    /// complete until it is marked so in turn.
    pub fn complete(&self, epoch: u16) {
        self.shared
            .completed
            .store(u32::from(epoch) + 1, Ordering::SeqCst);
        if self.shared.target_parked.swap(false, Ordering::SeqCst) {
            let _ = self.shared.target_waker.wake();
        }
    }

    fn has_room(&self, bytes: usize) -> bool {
        let pinned = self.shared.pinned.load(Ordering::SeqCst);
        pinned == 0 || pinned + bytes <= self.shared.max_bytes
    }
}

impl Drop for BatchSender {
    /// Dropping the sender ends the stream: the target sees
    /// [`RecvError::Done`] once it has received everything.
    fn drop(&mut self) {
        let _ = self.shared.target_waker.wake();
    }
}

impl BatchReceiver {
    /// Takes the next batch if one is waiting; `epoch` is the copy pass the
    /// target is in, for telling whether the stream is done.
    pub fn try_recv(&self, epoch: u16) -> Result<Batch, RecvError> {
        match self.rx.try_recv() {
            Ok(batch) => Ok(batch),
            Err(TryRecvError::Disconnected) => Err(self.end(epoch, true)),
            Err(TryRecvError::Empty) => {
                self.shared.target_parked.store(true, Ordering::SeqCst);
                // Re-check after parking: the source may have sent meanwhile.
                match self.rx.try_recv() {
                    Ok(batch) => {
                        self.shared.target_parked.store(false, Ordering::SeqCst);
                        Ok(batch)
                    }
                    Err(TryRecvError::Disconnected) => Err(self.end(epoch, true)),
                    Err(TryRecvError::Empty) => Err(self.end(epoch, false)),
                }
            }
        }
    }

    /// Why the channel is empty.
    fn end(&self, epoch: u16, disconnected: bool) -> RecvError {
        // The source sends before it marks completion, so once completion is
        // seen, a batch that raced in after the first look is in the channel.
        let completed = self.shared.completed.load(Ordering::SeqCst) == u32::from(epoch) + 1
            && self.rx.is_empty();
        match (completed, disconnected) {
            (true, _) => RecvError::Done,
            (false, true) => RecvError::Abandoned,
            (false, false) => RecvError::Empty,
        }
    }

    /// Gives back the budget of items the target is done with (acknowledged,
    /// or dropped), waking a parked source.
    pub fn release(&self, bytes: usize) {
        self.shared.pinned.fetch_sub(bytes, Ordering::SeqCst);
        if self.shared.source_parked.swap(false, Ordering::SeqCst) {
            let _ = self.shared.source_waker.wake();
        }
    }
}

impl Drop for BatchReceiver {
    fn drop(&mut self) {
        // A source parked on a full channel must learn the target is gone.
        let _ = self.shared.source_waker.wake();
    }
}
