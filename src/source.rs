//! The source loop: finds keys with SCAN and reads them with DUMP plus an
//! expiry read, deeply pipelined, and hands them to the target in batches.
//!
//! One connection carries everything in order: the next `SCAN` is in flight
//! while the `DUMP`s of the page before it are, and replies are matched to
//! commands by a queue of what each reply will be. Keys and payloads stay
//! slices of the connection's read buffer all the way to the target.
//!
//! Backpressure: when the channel is full, the loop holds its batch and stops
//! reading replies, so what it has not taken stays in the kernel's socket
//! buffers; it issues no new commands until the batch is handed over. The
//! window of keys in flight also shrinks as payloads grow, so a page of
//! multi-megabyte values does not pile up in the source's output buffer.
//!
//! This file never sends a command that writes: only SCAN, DUMP, PEXPIRETIME
//! and PTTL.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use resp::Frame;

use crate::conn::Conn;
use crate::control::Control;
use crate::error::{quote_key, Error, Role};
use crate::pipe::{Batch, BatchSender, Item, SendError};
use crate::progress::Stats;
use crate::session::{text, Session};

/// The source connection's token.
pub const SOURCE: Token = Token(0);
/// The source loop's waker: the target released channel room, or stop.
pub const SOURCE_WAKER: Token = Token(1);

/// Items per batch: amortises channel and wake-up costs.
pub const BATCH_ITEMS: usize = 512;
/// A batch is handed over at this many bytes even if not full.
pub const BATCH_BYTES: usize = 1024 * 1024;
/// Payload bytes the source may owe us at once (what its output buffer holds
/// for us), estimated from the recent payload sizes.
const INFLIGHT_BYTES: usize = 8 * 1024 * 1024;
/// How long a poll waits with nothing to do, bounding how late a stop is seen.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// How expiry is read from the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryRead {
    /// `PEXPIRETIME`: an absolute Unix time in ms (Redis 7.0+).
    Absolute,
    /// `PTTL`: ms from now, turned absolute with our clock on arrival.
    Relative,
    /// `--no-ttl`: not read at all.
    Skip,
}

/// What the source loop is asked to do.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    pub scan_count: u32,
    /// Most commands in flight.
    pub pipeline: u32,
    pub match_pattern: Option<Vec<u8>>,
    pub key_type: Option<String>,
    pub expiry: ExpiryRead,
    /// Keys per second, at most.
    pub rate: Option<u64>,
}

/// What a reply in the queue will be.
#[derive(Debug)]
enum Expect {
    Scan,
    Dump(Bytes),
    Expiry,
}

#[derive(Debug, PartialEq, Eq)]
enum ScanState {
    Ready,
    InFlight,
    Done,
}

/// The source side of a server-to-anything migration.
#[derive(Debug)]
pub struct ServerSource {
    conn: Conn,
    poll: Poll,
    opts: SourceOptions,
    cursor: u64,
    scan: ScanState,
    /// Keys found by SCAN and not yet asked for.
    keys: VecDeque<Bytes>,
    expect: VecDeque<Expect>,
    /// A DUMP reply waiting for its expiry reply.
    dumped: Option<(Bytes, Option<Bytes>)>,
    keys_in_flight: usize,
    /// Recent payload size, for the in-flight window.
    avg_payload: usize,
    batch: Batch,
    held: Option<Batch>,
    tx: BatchSender,
    stats: Arc<Stats>,
    control: Arc<Control>,
    pacer: Option<Pacer>,
}

impl ServerSource {
    /// Takes over an opened session; `poll` must own the waker the target uses
    /// to wake this loop (token [`SOURCE_WAKER`]).
    pub fn new(
        session: Session,
        poll: Poll,
        opts: SourceOptions,
        tx: BatchSender,
        stats: Arc<Stats>,
        control: Arc<Control>,
    ) -> Result<ServerSource, Error> {
        let conn = Conn::from_session(session, poll.registry(), SOURCE)?;
        let pacer = opts.rate.map(Pacer::new);
        Ok(ServerSource {
            conn,
            poll,
            opts,
            cursor: 0,
            scan: ScanState::Ready,
            keys: VecDeque::new(),
            expect: VecDeque::new(),
            dumped: None,
            keys_in_flight: 0,
            avg_payload: INFLIGHT_BYTES / 16,
            batch: Batch::with_capacity(BATCH_ITEMS),
            held: None,
            tx,
            stats,
            control,
            pacer,
        })
    }

    /// Runs until every key is handed over, the target goes away, or a stop.
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(64);
        loop {
            if self.control.stopped() {
                return Ok(());
            }
            if let Some(batch) = self.held.take() {
                if !self.send(batch)? {
                    return Ok(());
                }
            }
            if self.held.is_none() {
                while let Some(frame) = self.conn.next_frame()? {
                    self.on_reply(frame)?;
                    if self.batch_is_full() {
                        let batch = self.take_batch();
                        if !self.send(batch)? {
                            return Ok(());
                        }
                        if self.held.is_some() {
                            break;
                        }
                    }
                }
            }
            if self.held.is_none() {
                self.issue();
            }
            self.conn.flush()?;

            let scan_finished = self.scan == ScanState::Done && self.keys.is_empty();
            if self.expect.is_empty() && self.held.is_none() && !self.batch.is_empty() {
                // Nothing in flight: hand over what we have rather than wait.
                let batch = self.take_batch();
                if !self.send(batch)? {
                    return Ok(());
                }
            }
            if scan_finished && self.expect.is_empty() && self.held.is_none() {
                // Dropping the sender (with self) ends the stream.
                self.tx.complete();
                return Ok(());
            }

            let busy = (self.held.is_none() && self.conn.may_read()) || self.conn.may_write();
            let timeout = if busy {
                Duration::ZERO
            } else {
                match &self.pacer {
                    Some(p) if self.keys_in_flight == 0 && !self.keys.is_empty() => {
                        p.wait().min(IDLE_POLL)
                    }
                    _ => IDLE_POLL,
                }
            };
            poll_once(&mut self.poll, &mut events, timeout)?;
            for event in events.iter() {
                if event.token() == SOURCE {
                    self.conn.on_event(event);
                }
            }
        }
    }

    /// Queues SCAN and DUMP/expiry commands as the windows allow.
    fn issue(&mut self) {
        let opts = &self.opts;
        let out = &mut self.conn.out;
        let per_key = if opts.expiry == ExpiryRead::Skip {
            1
        } else {
            2
        };
        let by_count = (opts.pipeline as usize / per_key).max(1);
        let by_bytes = (INFLIGHT_BYTES / self.avg_payload.max(1)).max(1);
        let window = by_count.min(by_bytes);

        // SCAN is sequential (each needs the last cursor), and its reply waits
        // behind every DUMP queued before it. Keep a window's worth of found
        // keys in hand beyond the page being fetched, so DUMPs are queued
        // behind each SCAN and the server never idles waiting for its reply.
        let lookahead = opts.scan_count as usize + by_count;
        if self.scan == ScanState::Ready && self.keys.len() < lookahead {
            let argc = 4
                + 2 * usize::from(opts.match_pattern.is_some())
                + 2 * usize::from(opts.key_type.is_some());
            out.start(argc);
            out.arg(b"SCAN");
            out.arg_int(self.cursor as i64);
            out.arg(b"COUNT");
            out.arg_int(i64::from(opts.scan_count));
            if let Some(pattern) = &opts.match_pattern {
                out.arg(b"MATCH");
                out.arg(pattern);
            }
            if let Some(kind) = &opts.key_type {
                out.arg(b"TYPE");
                out.arg(kind.as_bytes());
            }
            self.expect.push_back(Expect::Scan);
            self.scan = ScanState::InFlight;
        }

        let mut allowance = match &self.pacer {
            Some(p) => p.allowance(),
            None => u64::MAX,
        };
        while self.keys_in_flight < window && allowance > 0 {
            let Some(key) = self.keys.pop_front() else {
                break;
            };
            out.command(&[b"DUMP", &key]);
            match opts.expiry {
                ExpiryRead::Absolute => out.command(&[b"PEXPIRETIME", &key]),
                ExpiryRead::Relative => out.command(&[b"PTTL", &key]),
                ExpiryRead::Skip => {}
            }
            self.expect.push_back(Expect::Dump(key));
            if opts.expiry != ExpiryRead::Skip {
                self.expect.push_back(Expect::Expiry);
            }
            self.keys_in_flight += 1;
            allowance -= 1;
            if let Some(p) = &mut self.pacer {
                p.issued += 1;
            }
        }
    }

    fn on_reply(&mut self, frame: Frame) -> Result<(), Error> {
        match self.expect.pop_front() {
            Some(Expect::Scan) => self.on_scan(frame),
            Some(Expect::Dump(key)) => {
                let payload = match frame {
                    Frame::Bulk(payload) => Some(payload),
                    Frame::Null => None,
                    other => {
                        return Err(self.unexpected(&format!("DUMP {}", quote_key(&key)), other))
                    }
                };
                if self.opts.expiry == ExpiryRead::Skip {
                    self.finish(key, payload, -1);
                } else {
                    self.dumped = Some((key, payload));
                }
                Ok(())
            }
            Some(Expect::Expiry) => {
                let (key, payload) = self
                    .dumped
                    .take()
                    .expect("an expiry read always follows its DUMP");
                match frame {
                    Frame::Integer(n) => {
                        self.finish(key, payload, n);
                        Ok(())
                    }
                    other => {
                        let command = match self.opts.expiry {
                            ExpiryRead::Absolute => "PEXPIRETIME",
                            _ => "PTTL",
                        };
                        Err(self.unexpected(&format!("{command} {}", quote_key(&key)), other))
                    }
                }
            }
            None => Err(Error::Protocol {
                role: Role::Source,
                endpoint: self.conn.name().to_string(),
                detail: "a reply arrived for no command".into(),
            }),
        }
    }

    fn on_scan(&mut self, frame: Frame) -> Result<(), Error> {
        let malformed = |detail: &str| Error::Protocol {
            role: Role::Source,
            endpoint: String::new(),
            detail: format!("malformed SCAN reply: {detail}"),
        };
        let parts = match frame {
            Frame::Array(parts) => parts,
            other => return Err(self.unexpected("SCAN", other)),
        };
        let [Frame::Bulk(cursor), Frame::Array(keys)] = <[Frame; 2]>::try_from(parts)
            .map_err(|_| self.named(malformed("expected [cursor, keys]")))?
        else {
            return Err(self.named(malformed("expected [cursor, keys]")));
        };
        self.cursor = std::str::from_utf8(&cursor)
            .ok()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| self.named(malformed("cursor is not a number")))?;
        let found = keys.len() as u64;
        for key in keys {
            match key {
                Frame::Bulk(key) => self.keys.push_back(key),
                _ => return Err(self.named(malformed("a key is not a bulk string"))),
            }
        }
        Stats::add(&self.stats.scanned, found);
        self.scan = if self.cursor == 0 {
            ScanState::Done
        } else {
            ScanState::Ready
        };
        Ok(())
    }

    /// Completes one key: into the batch, or counted as vanished.
    fn finish(&mut self, key: Bytes, payload: Option<Bytes>, expiry: i64) {
        self.keys_in_flight -= 1;
        let Some(payload) = payload else {
            Stats::add(&self.stats.vanished, 1);
            return;
        };
        let expire_at_ms = match (expiry, self.opts.expiry) {
            // -2: the key went away between DUMP and the expiry read.
            (-2, _) => {
                Stats::add(&self.stats.vanished, 1);
                return;
            }
            (n, _) if n < 0 => 0,
            (_, ExpiryRead::Skip) => 0,
            (n, ExpiryRead::Absolute) => n as u64,
            // PTTL 0 means "expires now": keep it absolute-now, so the target
            // sees it as expired rather than as persistent.
            (n, ExpiryRead::Relative) => now_ms() + n as u64,
        };
        self.avg_payload = (self.avg_payload * 7 + payload.len()) / 8;
        self.batch.push(Item {
            key,
            payload,
            expire_at_ms,
        });
    }

    fn batch_is_full(&self) -> bool {
        self.batch.len() >= BATCH_ITEMS || self.batch.bytes >= BATCH_BYTES
    }

    fn take_batch(&mut self) -> Batch {
        std::mem::replace(&mut self.batch, Batch::with_capacity(BATCH_ITEMS))
    }

    /// Hands a batch to the target: `Ok(false)` when the target is gone.
    fn send(&mut self, batch: Batch) -> Result<bool, Error> {
        match self.tx.try_send(batch) {
            Ok(()) => Ok(true),
            Err(SendError::Full(batch)) => {
                self.held = Some(batch);
                Ok(true)
            }
            Err(SendError::Disconnected) => Ok(false),
        }
    }

    fn unexpected(&self, command: &str, frame: Frame) -> Error {
        match frame {
            Frame::Error(e) => Error::Server {
                role: Role::Source,
                endpoint: self.conn.name().to_string(),
                command: command.to_string(),
                message: text(&e),
            },
            other => Error::Protocol {
                role: Role::Source,
                endpoint: self.conn.name().to_string(),
                detail: format!("unexpected reply to {command}: {other:?}"),
            },
        }
    }

    fn named(&self, mut e: Error) -> Error {
        if let Error::Protocol { endpoint, .. } = &mut e {
            *endpoint = self.conn.name().to_string();
        }
        e
    }
}

/// Spreads keys evenly over time for `--rate`: at most a 10 ms burst.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    burst: u64,
    start: Instant,
    issued: u64,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            burst: (rate / 100).max(1),
            start: Instant::now(),
            issued: 0,
        }
    }

    /// Keys that may be issued now.
    fn allowance(&self) -> u64 {
        let earned = (self.start.elapsed().as_secs_f64() * self.rate as f64) as u64;
        (earned + self.burst).saturating_sub(self.issued)
    }

    /// How long until the next key may be issued.
    fn wait(&self) -> Duration {
        let due = (self.issued + 1).saturating_sub(self.burst) as f64 / self.rate as f64;
        Duration::from_secs_f64(due).saturating_sub(self.start.elapsed())
    }
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One `poll`, retrying when a signal interrupts it.
pub fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Result<(), Error> {
    loop {
        match poll.poll(events, Some(timeout)) {
            Ok(()) => return Ok(()),
            Err(e) if crate::net::interrupted(&e) => continue,
            Err(e) => return Err(Error::Setup(e)),
        }
    }
}
