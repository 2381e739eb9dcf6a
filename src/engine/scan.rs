//! The scan role: what one source connection does once it is ready. It
//! finds keys with SCAN and reads each with DUMP plus an expiry read, deeply
//! pipelined, and turns the replies into [`Item`]s. Sans-IO: it writes
//! commands into a [`Requests`] queue and takes replies as frames, so the
//! unit tests below drive it by hand.
//!
//! One connection carries everything in order: the next `SCAN` is in flight
//! while the `DUMP`s of the page before it are, and replies are matched to
//! commands by a queue of what each reply will be. Keys and payloads stay
//! slices of the connection's read buffer all the way to the target.
//!
//! When the connection is lost, every key whose DUMP was in flight goes back
//! to the front of the line and an unanswered SCAN is sent again with the
//! same cursor, so nothing is skipped; when the server restarted, the cursor
//! means nothing and the scan starts over.
//!
//! This role never sends a command that writes: only SCAN, DUMP,
//! PEXPIRETIME and PTTL.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use resp::{Frame, Requests};

use crate::cluster::redirect::{parse_redirect, Redirect};
use crate::cluster::slot::slot;
use crate::cluster::slots::SlotSet;
use crate::engine::clock::now_ms;
use crate::engine::item::{Batch, Item, PageId};
use crate::engine::lanes::{lanes_for_keys, Lanes, Step};
use crate::engine::ledger::Ledger;
use crate::engine::live::DirtySet;
use crate::engine::pacer::Pacer;
use crate::engine::window::Window;
use crate::error::{quote_key, Error, Role};
use crate::net::handshake::text;
use crate::net::Incoming;
use crate::progress::Stats;

/// Payload bytes the source may owe us at once (what its output buffer holds
/// for us), estimated from the recent payload sizes: at least this much...
const INFLIGHT_BYTES: usize = 8 * 1024 * 1024;
/// ...and at most this much, however far the source is: with the
/// channel's budget it bounds the memory a far source can make rump hold.
const MAX_INFLIGHT_BYTES: usize = 32 * 1024 * 1024;
/// Keys asked for per SCAN when the source is near: large enough to
/// amortise a round trip on loopback.
pub const NEAR_SCAN_COUNT: u32 = 1000;
/// Most keys asked for per SCAN, however far the source: one SCAN blocks
/// the server for about COUNT dictionary steps. On 1M keys here SLOWLOG
/// timed `SCAN … COUNT 10000` at a median of 6.2 ms on Redis 7.0 (3.4 ms on
/// Valkey 8.1), under `slowlog-log-slower-than`'s default of 10 ms, the
/// line past which Redis itself calls a command slow. More SCANs in flight
/// (lanes), not larger ones, carry a far source.
pub const MAX_SCAN_COUNT: u32 = 10_000;
/// Most commands in flight on one source connection, however far: 128k
/// keys' DUMP and expiry reads (a few MiB of commands).
const MAX_PIPELINE: usize = 256 * 1024;
/// Near-server window when `--pipeline` is not given: 2048 keys' DUMP and
/// expiry reads (BENCHMARKS.md: 1024 left the source idle 13% of the time,
/// 4096 about 5%; deeper gained nothing).
pub const NEAR_PIPELINE: u32 = 4096;

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

/// What the scan is asked to do.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Only keys whose hash slot is in this set (`--slots`, `--partition`):
    /// the others are left out before any DUMP is sent for them.
    pub slots: Option<SlotSet>,
    /// `--scan-count`: COUNT of every SCAN; sized by the round trip
    /// otherwise.
    pub scan_count: Option<u32>,
    /// `--pipeline`: most commands in flight; sized by the round trip and
    /// the throughput otherwise.
    pub pipeline: Option<u32>,
    /// The node may be scanned along several lanes
    /// ([`crate::engine::lanes`]): a standalone server and no checkpoint
    /// (whose file holds one cursor per node).
    pub lanes: bool,
    pub match_pattern: Option<Vec<u8>>,
    pub key_type: Option<String>,
    pub expiry: ExpiryRead,
}

/// What a reply in the queue will be.
#[derive(Debug)]
enum Expect {
    /// A SCAN sent in this copy epoch, on a lane of a lanes generation.
    Scan {
        epoch: u16,
        lane: usize,
        generation: u32,
    },
    Dump(Bytes, PageId),
    Expiry,
    /// The `+OK` of an `ASKING` before a redirected key's read.
    Asking,
    /// `--live`: the periodic `DBSIZE` that tells a flush apart.
    DbSize,
}

/// A DUMP reply, waiting for its expiry reply.
#[derive(Debug)]
enum Dumped {
    Value(Bytes),
    Missing,
    TooLarge(u64),
    /// The key's slot is served by another node (`MOVED`) or being moved
    /// to it (`ASK`): it is read there.
    Redirected(Redirect),
}

/// The scan of one source node.
#[derive(Debug)]
pub struct ScanRole {
    node: u16,
    name: String,
    opts: ScanOptions,
    epoch: u16,
    /// The SCAN chains: one, whose cursor is sent verbatim as the server
    /// gave it, or several over disjoint parts of the cursor space.
    lanes: Lanes,
    /// Lanes the scan may be split into before its first SCAN (1: none):
    /// it is, when one chain cannot carry what the round trip needs.
    split: usize,
    /// This role only reads keys handed to it (a redirect's node, or a
    /// reader of a far node); it never scans, not even after a restart.
    adopting: bool,
    /// Connections whose DUMPs this role's SCANs feed: itself and its
    /// readers ([`crate::engine::source`]).
    feeds: usize,
    /// Payload bytes of the keys read so far.
    bytes_read: u64,
    /// Keys found by SCAN (or handed over by another node's redirect) and
    /// not yet asked for.
    keys: VecDeque<(Bytes, PageId)>,
    /// Keys an `ASK` sent here: read after `ASKING`, before the others.
    asked: VecDeque<(Bytes, PageId)>,
    /// Keys a redirect sends to another node, for the loop to hand over.
    redirected: Vec<(Bytes, PageId, Redirect)>,
    expect: VecDeque<Expect>,
    dumped: Option<(Bytes, PageId, Dumped)>,
    keys_in_flight: usize,
    /// Keys in flight: sized from the round trip and the rate of keys read.
    window: Window,
    /// Smallest COUNT sent, for [`ScanRole::check_scan_ends`].
    min_count: u32,
    /// Recent payload size, for the in-flight window.
    avg_payload: usize,
    /// The source's DBSIZE, and SCAN calls and keys so far, to tell a scan
    /// that will never end (a broken proxy) from a long one.
    dbsize: u64,
    calls: u64,
    returned: u64,
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    /// `--live`: keys changed on the source, to be read again; a key found
    /// missing then is deleted on the target.
    dirty: DirtySet,
    /// `--live`, draining: no new SCAN; what was found is still read.
    scan_stopped: bool,
    /// `--live`: when the next `DBSIZE` is due, what the last one said, and
    /// the keys marked since ([`ScanRole::follow_changes`]).
    live: Option<FlushWatch>,
}

/// FLUSHDB and FLUSHALL raise no keyspace event, so `--live` watches
/// `DBSIZE`: every key that goes away raises an event, so a fall of more
/// keys than events were seen since the last sample is a flush, when it
/// is a fall to 0 or of more than half the keys (an application writing on
/// at once refills the db before the next sample; a few events not yet
/// read when DBSIZE is answered are far from half the keys).
#[derive(Debug)]
struct FlushWatch {
    due: std::time::Instant,
    in_flight: bool,
    last: Option<i64>,
    /// Events seen since the last sample, for any key of the node.
    marked: u64,
}

impl FlushWatch {
    /// True when `now` keys after `last` is a fall the events do not
    /// explain (see [`FlushWatch`]).
    fn is_flush(&self, now: i64) -> bool {
        let Some(last) = self.last.filter(|&last| last > 0) else {
            return false;
        };
        let fell = u64::try_from(last - now).unwrap_or(0);
        let unexplained = fell.saturating_sub(self.marked);
        unexplained > 0 && (now == 0 || unexplained.saturating_mul(2) > last as u64)
    }
}

/// How often `--live` asks `DBSIZE`.
const DBSIZE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How many lanes a scan from `cursor` of a node with `dbsize` keys may be
/// split into once the round trip is known: 1 (one chain from the cursor as
/// it is) unless the node may have lanes, is large, and starts afresh.
fn lanes_allowed(opts: &ScanOptions, cursor: &str, dbsize: u64) -> usize {
    if opts.lanes && cursor == "0" {
        lanes_for_keys(dbsize)
    } else {
        1
    }
}

impl ScanRole {
    /// A scan of node `node` (as the ledger knows it) starting at `cursor`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: u16,
        name: &str,
        opts: ScanOptions,
        epoch: u16,
        cursor: &str,
        dbsize: u64,
        ledger: Arc<Ledger>,
        stats: Arc<Stats>,
    ) -> ScanRole {
        let per_key = if opts.expiry == ExpiryRead::Skip {
            1
        } else {
            2
        };
        let window = match opts.pipeline {
            Some(n) => Window::fixed((n as usize / per_key).max(1)),
            None => Window::auto(NEAR_PIPELINE as usize / per_key, MAX_PIPELINE / per_key),
        };
        let split = lanes_allowed(&opts, cursor, dbsize);
        ScanRole {
            node,
            name: name.to_string(),
            opts,
            epoch,
            lanes: Lanes::single(cursor),
            split,
            adopting: false,
            feeds: 1,
            bytes_read: 0,
            keys: VecDeque::new(),
            asked: VecDeque::new(),
            redirected: Vec::new(),
            expect: VecDeque::new(),
            dumped: None,
            keys_in_flight: 0,
            window,
            min_count: u32::MAX,
            avg_payload: INFLIGHT_BYTES / 16,
            dbsize,
            calls: 0,
            returned: 0,
            ledger,
            stats,
            dirty: DirtySet::default(),
            scan_stopped: false,
            live: None,
        }
    }

    /// `--live`: this node's changes are followed; watch for flushes.
    pub fn follow_changes(&mut self) {
        self.live = Some(FlushWatch {
            due: std::time::Instant::now(),
            in_flight: false,
            last: None,
            marked: 0,
        });
    }

    /// A role that scans nothing and only reads keys other nodes' redirects
    /// send it (a node a `MOVED` named that is not scanned itself).
    pub fn adopting(mut self) -> ScanRole {
        self.lanes.finish();
        self.adopting = true;
        self
    }

    /// Connections that read the keys this role's SCANs find: 1 plus its
    /// readers. Its SCANs find keys for all of them.
    pub fn set_feeds(&mut self, feeds: usize) {
        self.feeds = feeds.max(1);
    }

    /// How many connections the node's reads want. A TCP connection has at
    /// most its largest socket buffer (`per_connection`) in flight, so one
    /// whose measured bandwidth-delay product comes near that is probably
    /// held back by it, not by the server: then one more than now (at most
    /// `most`). A connection that stays below it, because the server or
    /// the link is the limit, asks for no more, and neither does this one
    /// once readers share the load and its own part falls below.
    pub fn connections_wanted(&self, per_connection: usize, most: usize) -> usize {
        self.window
            .connections_wanted(self.avg_payload, per_connection, self.feeds, most)
    }

    /// Keys this role could take now without exceeding its window: what a
    /// reader asks of the node it reads for.
    pub fn room(&self) -> usize {
        self.window
            .size()
            .saturating_sub(self.keys_in_flight + self.keys.len())
    }

    /// Keys found and not yet asked for, as many as the role can spare for
    /// a reader (up to `most`), from the back of the line.
    pub fn lend_keys(&mut self, most: usize) -> Vec<(Bytes, PageId)> {
        let spare = most.min(self.keys.len());
        self.keys.split_off(self.keys.len() - spare).into()
    }

    /// Keys another role of the same node lent: read in turn.
    pub fn borrow_keys(&mut self, keys: Vec<(Bytes, PageId)>) {
        self.keys.extend(keys);
    }

    /// Payload bytes of the keys read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Keys found and not yet asked for.
    pub fn keys_in_hand(&self) -> usize {
        self.keys.len()
    }

    /// Every key of this node's scan is read (or the scan is empty), and
    /// every changed key too.
    pub fn is_done(&self) -> bool {
        self.scan_done() && self.dirty.is_empty()
    }

    /// The scan itself is over (or stopped) and every key it found is read.
    pub fn scan_done(&self) -> bool {
        // A SCAN still in flight is in `expect`.
        let over = self.lanes.is_done() || self.scan_stopped;
        over && self.keys.is_empty()
            && self.asked.is_empty()
            && self.expect.is_empty()
            && self.redirected.is_empty()
    }

    /// `--live`: `key` changed on the source; it is read again (and deleted
    /// on the target if it is gone). A dirty set that overflows is dropped
    /// and the node scanned again, which is said.
    pub fn mark_dirty(&mut self, key: Bytes, now: std::time::Instant) {
        // Every event counts for the flush watch, selected or not: DBSIZE
        // counts every key of the db.
        if let Some(watch) = &mut self.live {
            watch.marked += 1;
        }
        if !self.selected_by_filters(&key) {
            return;
        }
        self.dirty.mark(key, now);
        if self.dirty.take_overflow() {
            self.stats.notice(format!(
                "source {}: more than {} changed keys wait to be copied: forgetting them and \
                 scanning the source again instead",
                self.name,
                crate::engine::live::MAX_DIRTY_KEYS
            ));
            self.rescan();
        }
    }

    /// Changed keys waiting, and when the oldest was marked.
    pub fn dirty(&self) -> (usize, Option<std::time::Instant>) {
        (self.dirty.len(), self.dirty.oldest())
    }

    /// `--live`: scan the node again from cursor 0, keeping what is found
    /// and in flight (a rescan catches up on changes that were missed).
    pub fn rescan(&mut self) {
        Stats::add(&self.stats.rescans, 1);
        self.calls = 0;
        self.returned = 0;
        // A SCAN in flight still brings its keys; its cursor is of the
        // earlier pass and is dropped.
        self.lanes.reset();
    }

    /// `--live`, draining: no new SCAN goes out; keys already found and
    /// changed keys already seen are still read.
    pub fn stop_scanning(&mut self) {
        self.scan_stopped = true;
    }

    /// A changed key is copied only if it is one this run selects.
    fn selected_by_filters(&self, key: &[u8]) -> bool {
        let pattern_ok = self
            .opts
            .match_pattern
            .as_deref()
            .map_or(true, |p| crate::engine::glob::matches(p, key));
        pattern_ok && self.selected(key)
    }

    /// A key another node redirected here, to be read on this node (after
    /// `ASKING` when `ask`).
    pub fn adopt(&mut self, key: Bytes, page: PageId, ask: bool) {
        if ask {
            self.asked.push_back((key, page));
        } else {
            self.keys.push_front((key, page));
        }
    }

    /// The keys redirected away since the last call.
    pub fn take_redirected(&mut self) -> Vec<(Bytes, PageId, Redirect)> {
        std::mem::take(&mut self.redirected)
    }

    /// Nothing in flight and nothing to issue without a new page.
    pub fn is_waiting(&self) -> bool {
        self.expect.is_empty()
    }

    /// Keys found and not yet asked for (the pacer's business).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty() || !self.asked.is_empty() || !self.dirty.is_empty()
    }

    /// Queues SCAN and DUMP/expiry commands as the windows allow; returns
    /// how many commands (replies owed) were queued.
    pub fn issue(&mut self, out: &mut Requests, pacer: Option<&mut Pacer>) -> usize {
        let by_count = self.window.size();
        // Payload bytes owed: the near default plus four times what the
        // round trip holds at the byte rate measured (not the guessed key
        // rate, which for large values would be gigabytes), up to the cap.
        // Large values come a few at a time, each long to arrive: twice the
        // product alone left two 4 MiB values in flight at 20 ms and lost a
        // third of the rate (BENCHMARKS.md, "Across a WAN").
        let byte_rate = self.window.measured_rate().unwrap_or(0.0) * self.avg_payload as f64;
        let needed = (4.0 * byte_rate * self.window.rtt().as_secs_f64()) as usize;
        let bytes = INFLIGHT_BYTES
            .saturating_add(needed)
            .min(MAX_INFLIGHT_BYTES);
        let by_bytes = (bytes / self.avg_payload.max(1)).max(1);
        let window = by_count.min(by_bytes);
        let mut queued = self.issue_scans(out, by_count);
        let opts = &self.opts;

        if let Some(watch) = &mut self.live {
            let now = std::time::Instant::now();
            if !watch.in_flight && !self.scan_stopped && now >= watch.due {
                out.cmd().arg(b"DBSIZE").send();
                self.expect.push_back(Expect::DbSize);
                watch.in_flight = true;
                watch.due = now + DBSIZE_EVERY;
                queued += 1;
            }
        }

        let mut pacer = pacer;
        let mut allowance = match &mut pacer {
            Some(p) => p.allowance(std::time::Instant::now()),
            None => u64::MAX,
        };
        let mut issued = 0;
        while self.keys_in_flight < window && allowance > 0 {
            // Changed keys go first: their lag is what a live sync is
            // judged by, and the scan's keys are read in the same window.
            let live = PageId::live(self.epoch, self.node);
            let (key, page, ask) = match self.asked.pop_front() {
                Some((key, page)) => (key, page, true),
                None => match self.dirty.pop() {
                    Some((key, _)) => (key, live, false),
                    None => match self.keys.pop_front() {
                        Some((key, page)) => (key, page, false),
                        None => break,
                    },
                },
            };
            if ask {
                out.cmd().arg(b"ASKING").send();
                self.expect.push_back(Expect::Asking);
                queued += 1;
            }
            out.cmd().arg(b"DUMP").arg(&key).send();
            queued += 1;
            self.expect.push_back(Expect::Dump(key.clone(), page));
            if opts.expiry != ExpiryRead::Skip {
                if ask {
                    out.cmd().arg(b"ASKING").send();
                    self.expect.push_back(Expect::Asking);
                    queued += 1;
                }
                match opts.expiry {
                    ExpiryRead::Absolute => out.cmd().arg(b"PEXPIRETIME").arg(&key).send(),
                    _ => out.cmd().arg(b"PTTL").arg(&key).send(),
                }
                self.expect.push_back(Expect::Expiry);
                queued += 1;
            }
            self.keys_in_flight += 1;
            allowance -= 1;
            issued += 1;
        }
        if let Some(p) = pacer {
            p.take(issued);
        }
        queued
    }

    /// Keys asked for per SCAN: `--scan-count`, or what the round trip
    /// needs, between [`NEAR_SCAN_COUNT`] and [`MAX_SCAN_COUNT`].
    fn scan_count(&self) -> u32 {
        self.opts.scan_count.unwrap_or_else(|| {
            let wanted = self.window.demand().ceil().min(f64::from(MAX_SCAN_COUNT)) as u32;
            wanted.clamp(NEAR_SCAN_COUNT, MAX_SCAN_COUNT)
        })
    }

    /// Queues the SCANs the windows allow; returns how many.
    ///
    /// Each SCAN's reply waits behind every DUMP queued before it, so a
    /// window's worth of found keys is kept in hand beyond the pages being
    /// fetched, and the server never idles waiting for a page. A far source
    /// needs more keys per round trip than one SCAN chain finds: as many
    /// SCANs go out at once, on as many lanes, as carry the keys that the
    /// round trip needs (twice the bandwidth-delay product), one on a near
    /// one.
    fn issue_scans(&mut self, out: &mut Requests, keys_window: usize) -> usize {
        if self.scan_stopped {
            return 0;
        }
        let count = self.scan_count();
        let demand = self.window.demand();
        if self.split > 1 && !self.window.rtt().is_zero() {
            // Decided once, before the first SCAN: a near source, whose
            // round trip the near COUNT covers, keeps one chain.
            if demand > f64::from(NEAR_SCAN_COUNT) && self.calls == 0 && self.lanes.in_flight() == 0
            {
                self.lanes = Lanes::split(self.split);
            }
            self.split = 1;
        }
        // A page takes more than a round trip (its SCAN waits behind the
        // DUMPs queued before it): twice the demand in SCANs keeps the
        // DUMP window fed. Keys in hand stay bounded by the lookahead.
        let wanted = (2.0 * demand * self.feeds as f64 / f64::from(count)).ceil() as usize;
        let most = wanted.clamp(1, self.lanes.count());
        let lookahead = count as usize + keys_window * self.feeds;
        let mut queued = 0;
        while self.lanes.in_flight() < most
            && self.keys.len() + self.lanes.in_flight() * (count as usize) < lookahead
        {
            let Some(lane) = self.lanes.next_ready() else {
                break;
            };
            let Some(cursor) = self.lanes.cursor(lane) else {
                break;
            };
            let mut scan = out
                .cmd()
                .arg(b"SCAN")
                .arg(cursor)
                .arg(b"COUNT")
                .uint(u64::from(count));
            if let Some(pattern) = &self.opts.match_pattern {
                scan = scan.arg(b"MATCH").arg(pattern);
            }
            if let Some(kind) = &self.opts.key_type {
                scan = scan.arg(b"TYPE").arg(kind.as_bytes());
            }
            scan.send();
            self.expect.push_back(Expect::Scan {
                epoch: self.epoch,
                lane,
                generation: self.lanes.generation(),
            });
            self.lanes.sent(lane);
            self.min_count = self.min_count.min(count);
            queued += 1;
        }
        queued
    }

    /// Takes one reply; finished keys go into `batch`.
    pub fn on_reply(&mut self, incoming: Incoming, batch: &mut Batch) -> Result<(), Error> {
        let frame = match incoming {
            Incoming::Frame(frame) => frame,
            Incoming::TooLarge(len) => {
                return match self.expect.pop_front() {
                    Some(Expect::Dump(key, page)) => {
                        self.dumped_or_finish(key, page, Dumped::TooLarge(len), batch);
                        Ok(())
                    }
                    _ => Err(self.protocol(format!(
                        "a {len}-byte reply where no DUMP payload was expected"
                    ))),
                };
            }
        };
        match self.expect.pop_front() {
            Some(Expect::Scan {
                epoch,
                lane,
                generation,
            }) => self.on_scan(frame, epoch, lane, generation),
            Some(Expect::Asking) => Ok(()),
            Some(Expect::DbSize) => {
                self.on_dbsize(frame);
                Ok(())
            }
            Some(Expect::Dump(key, page)) => {
                let dumped = match frame {
                    Frame::Bulk(payload) => Dumped::Value(payload),
                    Frame::Null => Dumped::Missing,
                    Frame::Error(e) => match parse_redirect(&e) {
                        Some(redirect) => Dumped::Redirected(redirect),
                        None => {
                            let command = format!("DUMP {}", quote_key(&key));
                            return Err(self.unexpected(&command, Frame::Error(e)));
                        }
                    },
                    other => {
                        return Err(self.unexpected(&format!("DUMP {}", quote_key(&key)), other))
                    }
                };
                self.dumped_or_finish(key, page, dumped, batch);
                Ok(())
            }
            Some(Expect::Expiry) => {
                let Some((key, page, dumped)) = self.dumped.take() else {
                    return Err(self.protocol("an expiry reply without its DUMP".into()));
                };
                if matches!(dumped, Dumped::Redirected(_)) {
                    // Redirected too; the key is read where its DUMP goes.
                    self.finish(key, page, dumped, -1, batch);
                    return Ok(());
                }
                match frame {
                    Frame::Integer(n) => {
                        self.finish(key, page, dumped, n, batch);
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
            None => Err(self.protocol("a reply arrived for no command".into())),
        }
    }

    /// A `DBSIZE` of `--live`: a fall to 0 from more keys than changes were
    /// seen since means the database was flushed, which no event tells.
    fn on_dbsize(&mut self, frame: Frame) {
        let Some(watch) = &mut self.live else {
            return;
        };
        watch.in_flight = false;
        let Frame::Integer(now) = frame else {
            return;
        };
        let flushed = watch.is_flush(now);
        let before = watch.last.unwrap_or(0);
        watch.last = Some(now);
        watch.marked = 0;
        if flushed {
            self.stats.notice(format!(
                "source {}: the database was flushed (DBSIZE fell from {before} to {now}, which \
                 raises no keyspace event); rump cannot tell which target keys came from the \
                 source, so it deletes none of them: run FLUSHDB on the target if it holds only \
                 this migration's keys. Scanning the source again",
                self.name
            ));
            self.rescan();
        }
    }

    fn dumped_or_finish(&mut self, key: Bytes, page: PageId, dumped: Dumped, batch: &mut Batch) {
        if self.opts.expiry == ExpiryRead::Skip {
            self.finish(key, page, dumped, -1, batch);
        } else {
            self.dumped = Some((key, page, dumped));
        }
    }

    fn on_scan(
        &mut self,
        frame: Frame,
        epoch: u16,
        lane: usize,
        generation: u32,
    ) -> Result<(), Error> {
        let malformed = |detail: &str| format!("malformed SCAN reply: {detail}");
        let parts = match frame {
            Frame::Array(parts) => parts,
            other => return Err(self.unexpected("SCAN", other)),
        };
        let Ok([Frame::Bulk(cursor), Frame::Array(keys)]) = <[Frame; 2]>::try_from(parts) else {
            return Err(self.protocol(malformed("expected [cursor, keys]")));
        };
        let (text, value) = std::str::from_utf8(&cursor)
            .ok()
            .and_then(|c| Some((c.to_string(), c.parse::<u64>().ok()?)))
            .ok_or_else(|| self.protocol(malformed("the cursor is not a number")))?;
        if epoch != self.epoch {
            // Sent before the copy started over: its cursor means nothing now.
            return Ok(());
        }
        let mut found = Vec::with_capacity(keys.len());
        let returned = keys.len() as u64;
        for key in keys {
            match key {
                Frame::Bulk(key) if self.selected(&key) => found.push(key),
                Frame::Bulk(_) => {}
                _ => return Err(self.protocol(malformed("a key is not a bulk string"))),
            }
        }
        self.calls += 1;
        self.returned += returned;
        self.check_scan_ends()?;
        let step = self
            .lanes
            .on_reply(lane, generation, cursor, value, &mut found);
        if step == Step::NotReversed {
            self.stats.notice(format!(
                "source {}: SCAN's cursor went backwards, so this server does not scan in the \
                 order Redis does: scanning it again with a single cursor (keys already found \
                 are copied twice)",
                self.name
            ));
        }
        // The ledger's cursor is for checkpoints, which a scan along lanes
        // never writes: it sees the scan end once every lane has.
        let next = if self.lanes.count() > 1 && !self.lanes.is_done() && text == "0" {
            "1"
        } else {
            &text
        };
        let page = self
            .ledger
            .open_page(self.node, self.epoch, next, found.len() as u64);
        Stats::add(&self.stats.scanned, found.len() as u64);
        self.keys.extend(found.into_iter().map(|k| (k, page)));
        Ok(())
    }

    /// True when `key` is in the selected slots.
    fn selected(&self, key: &[u8]) -> bool {
        self.opts
            .slots
            .as_ref()
            .map_or(true, |set| set.contains(slot(key)))
    }

    /// A SCAN that never returns cursor 0 is a broken server or proxy, not
    /// a long scan: a full scan returns each key about once and visits the
    /// table in about DBSIZE / COUNT calls. Allow eight times that, plus a
    /// million keys of slack for keys added during the scan.
    fn check_scan_ends(&self) -> Result<(), Error> {
        let slack = 1_000_000;
        let max_keys = self.dbsize.saturating_mul(8).saturating_add(slack);
        let count = u64::from(
            self.min_count
                .clamp(1, MAX_SCAN_COUNT.max(self.opts.scan_count.unwrap_or(0))),
        );
        let max_calls = 1_000 + max_keys / count * 8;
        if self.returned <= max_keys && self.calls <= max_calls {
            return Ok(());
        }
        Err(self.protocol(format!(
            "SCAN never returned cursor 0: {} calls returned {} keys, far more than the {} keys \
             DBSIZE reported (is a proxy rewriting the cursor?)",
            self.calls, self.returned, self.dbsize
        )))
    }

    /// Completes one key: into the batch, or counted as vanished or failed.
    fn finish(&mut self, key: Bytes, page: PageId, dumped: Dumped, expiry: i64, batch: &mut Batch) {
        self.keys_in_flight -= 1;
        self.window.completed(1);
        if page.epoch() != self.epoch {
            // Asked for before the copy started over: the new pass reads it again.
            return;
        }
        let payload = match dumped {
            Dumped::Value(payload) => payload,
            // A changed key that is gone: deleted, expired, evicted, renamed
            // or moved away. It goes from the target too.
            Dumped::Missing if page.is_live() => return batch.push(Item::deletion(key, page)),
            Dumped::Missing => return self.vanished(page),
            Dumped::Redirected(redirect) => {
                self.redirected.push((key, page, redirect));
                return;
            }
            Dumped::TooLarge(len) => {
                self.stats.fail(format!(
                    "source {}: DUMP {} is {len} bytes, over the limit rump reads; key not copied",
                    self.name,
                    quote_key(&key)
                ));
                self.ledger.done(&[(page, 1)]);
                return;
            }
        };
        let expire_at_ms = match (expiry, self.opts.expiry) {
            // -2: the key went away between DUMP and the expiry read.
            (-2, _) if page.is_live() => return batch.push(Item::deletion(key, page)),
            (-2, _) => return self.vanished(page),
            (n, _) if n < 0 => 0,
            (_, ExpiryRead::Skip) => 0,
            (n, ExpiryRead::Absolute) => n as u64,
            // PTTL 0 means "expires now": keep it absolute-now, so the target
            // sees it as expired rather than as persistent.
            (n, ExpiryRead::Relative) => now_ms() + n as u64,
        };
        self.avg_payload = (self.avg_payload * 7 + payload.len()) / 8;
        self.bytes_read += payload.len() as u64;
        batch.push(Item {
            key,
            payload,
            expire_at_ms,
            page,
        });
    }

    fn vanished(&self, page: PageId) {
        Stats::add(&self.stats.vanished, 1);
        self.ledger.done(&[(page, 1)]);
    }

    /// The connection was lost: what was in flight goes back in line, in
    /// order, to be asked again on the next connection.
    pub fn on_lost(&mut self) {
        let mut again = Vec::new();
        if let Some((key, page, _)) = self.dumped.take() {
            again.push((key, page));
        }
        for expect in self.expect.drain(..) {
            match expect {
                Expect::Dump(key, page) => again.push((key, page)),
                Expect::Scan { .. } => {}
                Expect::DbSize => {
                    if let Some(watch) = &mut self.live {
                        watch.in_flight = false;
                    }
                }
                Expect::Expiry | Expect::Asking => {}
            }
        }
        for entry in again.into_iter().rev() {
            self.keys.push_front(entry);
        }
        self.keys_in_flight = 0;
        self.lanes.lost();
        self.window.restart(std::time::Instant::now());
    }

    /// The copy starts over in `epoch` (this server or the target
    /// restarted): the scan begins again at cursor 0 and nothing found
    /// before counts. Replies still owed are taken and ignored.
    pub fn restart(&mut self, epoch: u16, dbsize: u64) {
        self.epoch = epoch;
        self.keys.clear();
        self.asked.clear();
        self.redirected.clear();
        // A SCAN in flight is answered for the old epoch and ignored; its
        // place in the queue keeps the replies in step.
        self.lanes = Lanes::single("0");
        self.split = lanes_allowed(&self.opts, "0", dbsize);
        if self.adopting {
            self.lanes.finish();
            self.split = 1;
        }
        self.dbsize = dbsize;
        self.calls = 0;
        self.returned = 0;
    }

    /// Takes the connection's round-trip estimate: the windows follow it.
    pub fn set_rtt(&mut self, rtt: std::time::Duration, now: std::time::Instant) {
        self.window.update(rtt, now);
    }

    /// What this scan was asked to do.
    pub fn options(&self) -> &ScanOptions {
        &self.opts
    }

    /// The copy epoch this scan is in.
    pub fn epoch(&self) -> u16 {
        self.epoch
    }

    fn unexpected(&self, command: &str, frame: Frame) -> Error {
        match frame {
            Frame::Error(e) => Error::Server {
                role: Role::Source,
                endpoint: self.name.clone(),
                command: command.to_string(),
                message: text(&e),
            },
            other => self.protocol(format!("unexpected reply to {command}: {other:?}")),
        }
    }

    fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            role: Role::Source,
            endpoint: self.name.clone(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(expiry: ExpiryRead) -> (ScanRole, Arc<Ledger>, Arc<Stats>) {
        role_counting(expiry, 10)
    }

    fn role_counting(expiry: ExpiryRead, scan_count: u32) -> (ScanRole, Arc<Ledger>, Arc<Stats>) {
        let ledger = Arc::new(Ledger::default());
        let stats = Arc::new(Stats::default());
        let node = ledger.add_node("h:1", "r", 0, "0");
        let opts = ScanOptions {
            slots: None,
            scan_count: Some(scan_count),
            pipeline: Some(64),
            lanes: false,
            match_pattern: None,
            key_type: None,
            expiry,
        };
        let scan = ScanRole::new(
            node,
            "h:1",
            opts,
            0,
            "0",
            3,
            Arc::clone(&ledger),
            Arc::clone(&stats),
        );
        (scan, ledger, stats)
    }

    fn scan_reply(cursor: &str, keys: &[&str]) -> Incoming {
        Incoming::Frame(Frame::Array(vec![
            Frame::Bulk(Bytes::copy_from_slice(cursor.as_bytes())),
            Frame::Array(
                keys.iter()
                    .map(|k| Frame::Bulk(Bytes::copy_from_slice(k.as_bytes())))
                    .collect(),
            ),
        ]))
    }

    fn sent(out: &mut Requests) -> String {
        let bytes = out.to_bytes();
        out.advance(out.len());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn int(n: i64) -> Incoming {
        Incoming::Frame(Frame::Integer(n))
    }

    fn bulk(b: &str) -> Incoming {
        Incoming::Frame(Frame::Bulk(Bytes::copy_from_slice(b.as_bytes())))
    }

    #[test]
    fn scan_then_dump_and_expiry_make_items() {
        let (mut scan, ledger, stats) = role(ExpiryRead::Absolute);
        let mut out = Requests::new();
        assert_eq!(scan.issue(&mut out, None), 1);
        assert!(sent(&mut out).contains("SCAN\r\n$1\r\n0\r\n"));
        let mut batch = Batch::default();
        scan.on_reply(scan_reply("18446744073709551615", &["a", "b"]), &mut batch)
            .unwrap();
        assert_eq!(stats.scanned.load(std::sync::atomic::Ordering::Relaxed), 2);
        // The next SCAN goes out with the cursor verbatim (a u64, above
        // i64), ahead of the DUMPs of the page before it.
        assert_eq!(scan.issue(&mut out, None), 5);
        let text = sent(&mut out);
        assert!(text.contains("$20\r\n18446744073709551615\r\n"), "{text}");
        assert!(text.contains("DUMP\r\n$1\r\na") && text.contains("PEXPIRETIME\r\n$1\r\nb"));
        scan.on_reply(scan_reply("0", &[]), &mut batch).unwrap();
        scan.on_reply(bulk("payload-a"), &mut batch).unwrap();
        scan.on_reply(int(-1), &mut batch).unwrap();
        scan.on_reply(Incoming::Frame(Frame::Null), &mut batch)
            .unwrap();
        scan.on_reply(int(-2), &mut batch).unwrap();
        assert!(scan.is_done());
        assert_eq!(batch.len(), 1);
        assert_eq!(
            (&batch.items[0].key[..], batch.items[0].expire_at_ms),
            (&b"a"[..], 0)
        );
        assert_eq!(stats.vanished.load(std::sync::atomic::Ordering::Relaxed), 1);
        // The vanished key is done; the copied one is not acknowledged yet.
        assert_eq!(ledger.snapshot()[0].cursor, "0");
        assert!(!ledger.snapshot()[0].complete);
        ledger.done(&[(batch.items[0].page, 1)]);
        assert!(ledger.snapshot()[0].complete);
    }

    #[test]
    fn changed_keys_are_read_first_and_a_missing_one_becomes_a_deletion() {
        let (mut scan, _, stats) = role(ExpiryRead::Absolute);
        scan.follow_changes();
        let mut out = Requests::new();
        let mut batch = Batch::default();
        // The scan's first page is done; then two keys change.
        scan.issue(&mut out, None);
        let first = sent(&mut out);
        assert!(
            first.contains("SCAN") && first.contains("DBSIZE"),
            "{first}"
        );
        scan.on_reply(scan_reply("0", &[]), &mut batch).unwrap();
        scan.on_reply(int(3), &mut batch).unwrap();
        assert!(scan.scan_done() && scan.is_done());
        let now = std::time::Instant::now();
        scan.mark_dirty(Bytes::from_static(b"kept"), now);
        scan.mark_dirty(Bytes::from_static(b"gone"), now);
        scan.mark_dirty(Bytes::from_static(b"kept"), now);
        assert_eq!(scan.dirty().0, 2);
        assert!(!scan.is_done());
        scan.issue(&mut out, None);
        let text = sent(&mut out);
        assert!(text.contains("DUMP\r\n$4\r\nkept") && text.contains("DUMP\r\n$4\r\ngone"));
        scan.on_reply(bulk("payload"), &mut batch).unwrap();
        scan.on_reply(int(-1), &mut batch).unwrap();
        scan.on_reply(Incoming::Frame(Frame::Null), &mut batch)
            .unwrap();
        scan.on_reply(int(-2), &mut batch).unwrap();
        assert!(scan.is_done());
        assert_eq!(batch.len(), 2);
        assert!(batch.items[0].page.is_live() && !batch.items[0].is_deletion());
        assert!(batch.items[1].page.is_live() && batch.items[1].is_deletion());
        assert_eq!(&batch.items[1].key[..], b"gone");
        // Not counted as vanished: a deletion is applied, not skipped.
        assert_eq!(stats.vanished.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn a_dbsize_that_falls_to_zero_unexplained_is_a_flush_and_rescans() {
        let (mut scan, _, stats) = role(ExpiryRead::Skip);
        scan.follow_changes();
        let mut out = Requests::new();
        let mut batch = Batch::default();
        scan.issue(&mut out, None);
        sent(&mut out);
        scan.on_reply(scan_reply("0", &[]), &mut batch).unwrap();
        scan.on_reply(int(500), &mut batch).unwrap();
        // The next DBSIZE is due a second later: make it due now.
        if let Some(w) = &mut scan.live {
            w.due = std::time::Instant::now();
        }
        scan.issue(&mut out, None);
        assert!(sent(&mut out).contains("DBSIZE"));
        scan.on_reply(int(0), &mut batch).unwrap();
        assert_eq!(stats.rescans.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(stats.take_notices().iter().any(|n| n.contains("flushed")));
        // The rescan starts at cursor 0.
        scan.issue(&mut out, None);
        assert!(sent(&mut out).contains("SCAN\r\n$1\r\n0\r\n"));
    }

    #[test]
    fn a_fall_the_events_do_not_explain_is_a_flush() {
        let watch = |last: Option<i64>, marked: u64| FlushWatch {
            due: std::time::Instant::now(),
            in_flight: false,
            last,
            marked,
        };
        // Flushed, then refilled at once by a busy application.
        assert!(watch(Some(12_000), 200).is_flush(200));
        assert!(watch(Some(5), 0).is_flush(0));
        assert!(watch(Some(1000), 0).is_flush(400));
        // Every key deleted by a command: each raised an event.
        assert!(!watch(Some(10), 10).is_flush(0));
        assert!(!watch(Some(12_000), 11_900).is_flush(200));
        // A few events not read yet when DBSIZE was answered.
        assert!(!watch(Some(1000), 0).is_flush(600));
        // Growth, and nothing to compare with.
        assert!(!watch(Some(10), 0).is_flush(20));
        assert!(!watch(None, 0).is_flush(0));
        assert!(!watch(Some(0), 0).is_flush(0));
    }

    #[test]
    fn events_for_keys_not_selected_count_for_the_flush_watch() {
        let (mut scan, _, _) = role(ExpiryRead::Skip);
        scan.opts.match_pattern = Some(b"a:*".to_vec());
        scan.follow_changes();
        let now = std::time::Instant::now();
        scan.mark_dirty(Bytes::from_static(b"b:1"), now);
        scan.mark_dirty(Bytes::from_static(b"a:1"), now);
        assert_eq!(scan.dirty().0, 1, "only the selected key is copied");
        assert_eq!(scan.live.as_ref().map(|w| w.marked), Some(2));
    }

    #[test]
    fn a_lost_connection_puts_in_flight_keys_back_in_order() {
        let (mut scan, _, _) = role(ExpiryRead::Absolute);
        let mut out = Requests::new();
        scan.issue(&mut out, None);
        let mut batch = Batch::default();
        scan.on_reply(scan_reply("7", &["a", "b", "c"]), &mut batch)
            .unwrap();
        sent(&mut out);
        assert_eq!(scan.issue(&mut out, None), 7);
        sent(&mut out);
        // The SCAN and a's DUMP arrived; a's expiry, b and c are owed.
        scan.on_reply(scan_reply("9", &["d"]), &mut batch).unwrap();
        scan.on_reply(bulk("pa"), &mut batch).unwrap();
        scan.on_lost();
        assert_eq!(scan.issue(&mut out, None), 9);
        let text = sent(&mut out);
        let at = |k: &str| text.find(&format!("\r\n{k}\r\n")).unwrap();
        assert!(
            at("a") < at("b") && at("b") < at("c") && at("c") < at("d"),
            "{text}"
        );
        assert!(
            text.contains("SCAN\r\n$1\r\n9\r\n"),
            "the scan goes on from its cursor"
        );
        assert!(batch.is_empty());
    }

    /// A role with the sizes left to rump, on a node of `dbsize` keys.
    fn auto_role(dbsize: u64) -> ScanRole {
        let ledger = Arc::new(Ledger::default());
        let node = ledger.add_node("h:1", "r", 0, "0");
        let opts = ScanOptions {
            slots: None,
            scan_count: None,
            pipeline: None,
            lanes: true,
            match_pattern: None,
            key_type: None,
            expiry: ExpiryRead::Absolute,
        };
        ScanRole::new(node, "h:1", opts, 0, "0", dbsize, ledger, Arc::default())
    }

    fn scans(text: &str) -> Vec<(String, String)> {
        // SCAN <cursor> COUNT <n>, as RESP: $4 SCAN $len cursor $5 COUNT $len n
        let parts: Vec<&str> = text.split("\r\n").collect();
        parts
            .windows(8)
            .filter(|w| w[1] == "SCAN")
            .map(|w| (w[3].to_string(), w[7].to_string()))
            .collect()
    }

    #[test]
    fn a_near_source_gets_one_scan_of_the_near_count() {
        let sent = first_scans(1_000_000, std::time::Duration::from_micros(50));
        assert_eq!(sent, [("0".to_string(), "1000".to_string())]);
    }

    /// The SCANs (cursor, COUNT) a fresh role on `dbsize` keys sends first,
    /// `rtt` away.
    fn first_scans(dbsize: u64, rtt: std::time::Duration) -> Vec<(String, String)> {
        let mut scan = auto_role(dbsize);
        let mut out = Requests::new();
        scan.set_rtt(rtt, std::time::Instant::now());
        scan.issue(&mut out, None);
        scans(&sent(&mut out))
    }

    #[test]
    fn a_far_source_gets_several_large_scans_on_disjoint_lanes() {
        let sent = first_scans(1_000_000, std::time::Duration::from_millis(80));
        // 2 × 200k keys a second × 80 ms = 32,000 keys in flight, and
        // twice that in SCANs of 10,000, as far as the lookahead of one
        // page and the window (42,000 keys) allows: five.
        assert_eq!(sent.len(), 5, "{sent:?}");
        assert!(sent.iter().all(|(_, count)| count == "10000"));
        let mut cursors: Vec<&str> = sent.iter().map(|(c, _)| c.as_str()).collect();
        cursors.dedup();
        assert_eq!(cursors.len(), 5, "each on its own lane: {cursors:?}");
    }

    #[test]
    fn a_small_source_is_scanned_along_one_chain() {
        let sent = first_scans(5_000, std::time::Duration::from_millis(80));
        assert_eq!(sent, [("0".to_string(), "10000".to_string())]);
    }

    #[test]
    fn a_restart_begins_again_at_cursor_zero_and_ignores_the_old_scan() {
        let (mut scan, _, stats) = role(ExpiryRead::Skip);
        let mut out = Requests::new();
        let mut batch = Batch::default();
        scan.issue(&mut out, None);
        scan.on_reply(scan_reply("9", &["a"]), &mut batch).unwrap();
        assert_eq!(scan.issue(&mut out, None), 2);
        sent(&mut out);
        scan.restart(1, 3);
        // The new pass starts at once; the old SCAN's reply, still owed,
        // is taken in turn and ignored.
        assert_eq!(scan.issue(&mut out, None), 1);
        assert!(sent(&mut out).contains("SCAN\r\n$1\r\n0\r\n"));
        scan.on_reply(scan_reply("12", &["x"]), &mut batch).unwrap();
        scan.on_reply(bulk("pa"), &mut batch).unwrap();
        assert!(batch.is_empty(), "a key of the old pass is not handed over");
        assert_eq!(stats.scanned.load(std::sync::atomic::Ordering::Relaxed), 1);
        scan.on_reply(scan_reply("0", &["y"]), &mut batch).unwrap();
        assert_eq!(stats.scanned.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(scan.issue(&mut out, None), 1, "the new pass's key");
        assert!(sent(&mut out).contains("DUMP\r\n$1\r\ny\r\n"));
    }

    #[test]
    fn a_scan_that_never_ends_is_an_error() {
        let (mut scan, _, _) = role_counting(ExpiryRead::Skip, 1000);
        let mut batch = Batch::default();
        let mut out = Requests::new();
        let mut result = Ok(());
        for _ in 0..20_000 {
            scan.issue(&mut out, None);
            sent(&mut out);
            result = scan.on_reply(scan_reply("1", &[]), &mut batch);
            if result.is_err() {
                break;
            }
        }
        let e = result.unwrap_err().to_string();
        assert!(e.contains("SCAN never returned cursor 0"), "{e}");
    }

    #[test]
    fn an_oversized_value_fails_its_key_only() {
        let (mut scan, ledger, stats) = role(ExpiryRead::Absolute);
        let mut out = Requests::new();
        let mut batch = Batch::default();
        scan.issue(&mut out, None);
        scan.on_reply(scan_reply("0", &["big", "small"]), &mut batch)
            .unwrap();
        scan.issue(&mut out, None);
        scan.on_reply(Incoming::TooLarge(600_000_000), &mut batch)
            .unwrap();
        scan.on_reply(int(-1), &mut batch).unwrap();
        scan.on_reply(bulk("p"), &mut batch).unwrap();
        scan.on_reply(int(-1), &mut batch).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(stats.failures()[0].contains("\"big\" is 600000000 bytes"));
        ledger.done(&[(batch.items[0].page, 1)]);
        assert!(ledger.snapshot()[0].complete);
    }

    #[test]
    fn a_redirected_dump_is_handed_over_and_an_asked_key_read_after_asking() {
        let (mut scan, _, stats) = role(ExpiryRead::Absolute);
        let mut out = Requests::new();
        let mut batch = Batch::default();
        scan.issue(&mut out, None);
        scan.on_reply(scan_reply("0", &["moved", "kept"]), &mut batch)
            .unwrap();
        scan.issue(&mut out, None);
        sent(&mut out);
        let moved = Incoming::Frame(Frame::Error("MOVED 1234 127.0.0.1:7002".into()));
        scan.on_reply(moved, &mut batch).unwrap();
        // The expiry read is redirected too, and ignored.
        let again = Incoming::Frame(Frame::Error("MOVED 1234 127.0.0.1:7002".into()));
        scan.on_reply(again, &mut batch).unwrap();
        scan.on_reply(bulk("pk"), &mut batch).unwrap();
        scan.on_reply(int(-1), &mut batch).unwrap();
        assert_eq!(batch.len(), 1);
        assert!(
            !scan.is_done(),
            "a redirected key is still to be handed over"
        );
        let redirected = scan.take_redirected();
        assert_eq!(redirected.len(), 1);
        assert_eq!(&redirected[0].0[..], b"moved");
        assert_eq!(redirected[0].2.addr(), "127.0.0.1:7002");
        assert!(scan.is_done());
        assert_eq!(stats.vanished.load(std::sync::atomic::Ordering::Relaxed), 0);

        let (key, page, _) = redirected.into_iter().next().unwrap();
        let (mut other, _, _) = role(ExpiryRead::Absolute);
        let other_ref = &mut other;
        other_ref.adopt(key, page, true);
        let mut out = Requests::new();
        // SCAN, then ASKING + DUMP + ASKING + PEXPIRETIME for the asked key.
        assert_eq!(other_ref.issue(&mut out, None), 5);
        let text = sent(&mut out);
        assert!(
            text.contains("ASKING\r\n*2\r\n$4\r\nDUMP\r\n$5\r\nmoved"),
            "{text}"
        );
    }
}
