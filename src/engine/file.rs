//! The dump-file ends of a migration: a loop that reads a dump into the
//! channel (file → server) and one that writes the channel into a dump
//! (server → file). The formats themselves live in `dump/`.
//!
//! They keep the shape of the server loops (a `Poll` that the other side
//! wakes through the channel, the same stop switch, the same counters), so
//! `app.rs` wires every combination the same way.

use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll};

use crate::dump::{DumpHeader, DumpReader, DumpWriter, Format, Input, Output};
use crate::engine::control::Control;
use crate::engine::item::Batch;
use crate::engine::ledger::{Acks, Ledger};
use crate::engine::pipe::{BatchReceiver, BatchSender, RecvError, SendError};
use crate::engine::poll_once;
use crate::error::Error;
use crate::progress::Stats;

/// How long a parked file loop sleeps before looking at the stop switch.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// Reads a dump file (or stdin) into the channel.
pub struct FileSource {
    reader: DumpReader<Input>,
    poll: Poll,
    tx: BatchSender,
    /// `--no-ttl`: drop the recorded expiry times.
    drop_ttl: bool,
    stats: Arc<Stats>,
    control: Arc<Control>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileSource({} records read)", self.reader.records())
    }
}

impl FileSource {
    /// `poll` must own the waker the target uses to wake this loop.
    pub fn new(
        reader: DumpReader<Input>,
        poll: Poll,
        tx: BatchSender,
        drop_ttl: bool,
        stats: Arc<Stats>,
        control: Arc<Control>,
    ) -> FileSource {
        FileSource {
            reader,
            poll,
            tx,
            drop_ttl,
            stats,
            control,
        }
    }

    /// Reads every verified batch into the channel; a damaged file ends the
    /// run with an error naming the byte offset, after the batches before the
    /// damage (each verified by its own checksum) have been handed over.
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(4);
        while let Some(items) = self.reader.next_batch()? {
            let mut batch = Batch::with_capacity(items.len());
            for mut item in items {
                if self.drop_ttl {
                    item.expire_at_ms = 0;
                }
                batch.push(item);
            }
            Stats::add(&self.stats.scanned, batch.len() as u64);
            loop {
                if self.control.stopped() {
                    return Ok(());
                }
                match self.tx.try_send(batch) {
                    Ok(()) => break,
                    Err(SendError::Full(back)) => {
                        batch = back;
                        poll_once(&mut self.poll, &mut events, IDLE_POLL)?;
                    }
                    Err(SendError::Disconnected) => return Ok(()),
                }
            }
        }
        self.tx.complete(0);
        Ok(())
    }
}

/// Writes the channel into a dump file (atomically), a device or FIFO, or stdout.
pub struct FileTarget {
    writer: DumpWriter<Output>,
    name: String,
    /// False when bytes reach the destination as they are written (stdout,
    /// a device, a FIFO): an abandoned dump cannot be taken back there.
    atomic: bool,
    poll: Poll,
    rx: BatchReceiver,
    stats: Arc<Stats>,
    control: Arc<Control>,
    ledger: Arc<Ledger>,
}

impl std::fmt::Debug for FileTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileTarget({:?})", self.name)
    }
}

impl FileTarget {
    /// Creates the output now (so an unwritable directory fails before any
    /// key is read); `poll` must own the waker the source uses to wake this loop.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        path: &str,
        format: Format,
        header: DumpHeader,
        poll: Poll,
        rx: BatchReceiver,
        stats: Arc<Stats>,
        control: Arc<Control>,
        ledger: Arc<Ledger>,
    ) -> Result<FileTarget, Error> {
        let output = Output::create(path)?;
        let atomic = output.is_atomic();
        let writer = DumpWriter::new(output, path, format, header)?;
        Ok(FileTarget {
            writer,
            name: path.to_string(),
            atomic,
            poll,
            rx,
            stats,
            control,
            ledger,
        })
    }

    /// Writes batches until the source is done, then completes the dump
    /// (end marker, fsync, rename). On a stop or an error the writer is
    /// dropped instead: a regular file keeps its previous contents.
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(4);
        let mut acks = Acks::default();
        let epoch = self.control.epoch();
        loop {
            if self.control.stopped() {
                forget_written(&self.stats, self.atomic);
                return Ok(());
            }
            if self.control.epoch() != epoch {
                // A dump cannot take back what it wrote, and the restarted
                // source's keys may differ: this dump would be a mixture.
                forget_written(&self.stats, self.atomic);
                return Err(Error::Aborted(format!(
                    "dump {}: the source restarted mid-dump, so this dump would mix two states of it; nothing was written: run the dump again",
                    self.name
                )));
            }
            match self.rx.try_recv(epoch) {
                Ok(batch) => {
                    if let Err(e) = self.writer.write_batch(&batch.items) {
                        return Err(self.nothing_written(e.into()));
                    }
                    let bytes: u64 = batch.items.iter().map(|i| i.payload.len() as u64).sum();
                    Stats::add(&self.stats.copied, batch.len() as u64);
                    Stats::add(&self.stats.bytes, bytes);
                    for item in &batch.items {
                        acks.push(item.page);
                    }
                    acks.flush(&self.ledger);
                    self.rx.release(batch.bytes);
                }
                Err(RecvError::Empty) => poll_once(&mut self.poll, &mut events, IDLE_POLL)?,
                Err(RecvError::Done) => break,
                // The source failed: a partial dump must not replace the
                // previous one. Dropping the writer removes the temporary file.
                Err(RecvError::Abandoned) => {
                    forget_written(&self.stats, self.atomic);
                    return Ok(());
                }
            }
        }
        if self.control.stopped() {
            forget_written(&self.stats, self.atomic);
            return Ok(());
        }
        let done = match self.writer.finish() {
            Ok(done) => done,
            Err(e) => {
                forget_written(&self.stats, self.atomic);
                return Err(e.into());
            }
        };
        // Legacy cannot store an already-expired key; it was left out.
        if done.skipped_expired > 0 {
            use std::sync::atomic::Ordering;
            self.stats
                .copied
                .fetch_sub(done.skipped_expired, Ordering::Relaxed);
            Stats::add(&self.stats.vanished, done.skipped_expired);
        }
        done.out.commit(&self.name).map_err(|e| {
            forget_written(&self.stats, self.atomic);
            Error::from(e)
        })?;
        self.control.finish();
        Ok(())
    }

    fn nothing_written(&self, e: Error) -> Error {
        forget_written(&self.stats, self.atomic);
        e
    }
}

/// A dump file that is not completed holds nothing (its temporary file is
/// removed), so nothing counts as copied. Stdout, devices and FIFOs keep
/// their count: those bytes did go out.
fn forget_written(stats: &Stats, atomic: bool) {
    use std::sync::atomic::Ordering;
    if atomic {
        stats.copied.store(0, Ordering::Relaxed);
        stats.bytes.store(0, Ordering::Relaxed);
    }
}
