//! What crosses from the source thread to the target thread, and the bounded
//! channel that carries it. The only module that touches crossbeam.
//!
//! The channel is bounded twice: by batches (crossbeam's capacity) and by
//! bytes. Each payload is a slice that pins the read chunk it came from, so the
//! byte budget, not the key count, is what bounds memory: a source that reads
//! faster than the target writes parks until the target releases bytes.
//!
//! Each side parks in its own `mio::Poll`; the other side wakes it through its
//! `Waker` only when it said it was parked, so a busy run costs no wake-up
//! syscalls at all.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use mio::Waker;

/// One key on its way from source to target.
///
/// `key` and `payload` are slices of the source connection's read buffer (or of
/// a dump file's read buffer): nothing is copied between the `DUMP` reply and
/// the `RESTORE` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The key name, binary.
    pub key: Bytes,
    /// The `DUMP` payload: the value as the source server serialises it.
    pub payload: Bytes,
    /// Absolute expiry in Unix milliseconds; 0 means the key does not expire
    /// (the same convention as `RESTORE`'s ttl argument).
    pub expire_at_ms: u64,
}

/// Rough per-item cost beyond key and payload: the `Item` itself and the RESP
/// framing around it in the read buffer.
const ITEM_OVERHEAD: usize = 96;

/// Items handed over together, so channel and wake-up costs are per batch.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<Item>,
    /// What the items pin in memory, as the byte budget counts it.
    pub bytes: usize,
}

impl Batch {
    /// An empty batch with room for `n` items.
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
            bytes: 0,
        }
    }

    /// Adds an item and counts its bytes.
    pub fn push(&mut self, item: Item) {
        self.bytes += item.key.len() + item.payload.len() + ITEM_OVERHEAD;
        self.items.push(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// State both ends share.
#[derive(Debug)]
struct Shared {
    /// Bytes sent and not yet released by the target.
    pinned: AtomicUsize,
    /// The source said it read everything ([`BatchSender::complete`]).
    completed: AtomicBool,
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
    /// The source read everything and everything was received.
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
        completed: AtomicBool::new(false),
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

    /// Marks the stream complete: everything the source had is sent. Without
    /// it, dropping the sender reads as [`RecvError::Abandoned`].
    pub fn complete(&self) {
        self.shared.completed.store(true, Ordering::SeqCst);
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
    /// Takes the next batch if one is waiting.
    pub fn try_recv(&self) -> Result<Batch, RecvError> {
        match self.rx.try_recv() {
            Ok(batch) => Ok(batch),
            Err(TryRecvError::Disconnected) => Err(self.end()),
            Err(TryRecvError::Empty) => {
                self.shared.target_parked.store(true, Ordering::SeqCst);
                // Re-check after parking: the source may have sent meanwhile.
                match self.rx.try_recv() {
                    Ok(batch) => {
                        self.shared.target_parked.store(false, Ordering::SeqCst);
                        Ok(batch)
                    }
                    Err(TryRecvError::Disconnected) => Err(self.end()),
                    Err(TryRecvError::Empty) => Err(RecvError::Empty),
                }
            }
        }
    }

    fn end(&self) -> RecvError {
        if self.shared.completed.load(Ordering::SeqCst) {
            RecvError::Done
        } else {
            RecvError::Abandoned
        }
    }

    /// Gives back the budget of a batch whose items the target is done with,
    /// waking a parked source.
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
