//! The source loop: owns every source connection (one per node; a slab
//! keyed by mio token), drives each node's scan role and link, and hands
//! finished items to the target in batches.
//!
//! Backpressure: when the channel is full, the loop holds its batch and stops
//! reading replies, so what it has not taken stays in the kernel's socket
//! buffers; it issues no new commands until the batch is handed over.
//!
//! Faults: a lost connection is reconnected by its [`Link`]; the scan role
//! re-queues what was in flight. A server that restarted makes the copy
//! start over ([`Control::start_over`]); so does a target that restarted,
//! which this loop learns from the copy epoch. Once every node's scan is
//! done, the loop marks the stream complete and waits until the target has
//! acknowledged everything, because a target restart that late still means
//! scanning again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Poll, Token};

use crate::cluster::redirect::Redirect;
use crate::config::ServerEndpoint;
use crate::engine::control::Control;
use crate::engine::item::{Batch, PageId};
use crate::engine::ledger::Ledger;
use crate::engine::link::{Link, LinkEvent};
use crate::engine::live::{Feed, FeedEvent};
use crate::engine::nodes::{HasLink, Nodes};
use crate::engine::pacer::Pacer;
use crate::engine::pipe::{BatchSender, SendError};
use crate::engine::route::node_endpoint;
use crate::engine::scan::ScanRole;
use crate::engine::spread::{Spread, Verdict};
use crate::error::{Error, Role};
use crate::net::conn::Conn;
use crate::progress::Stats;

/// Items per batch: amortises channel and wake-up costs.
pub const BATCH_ITEMS: usize = 512;
/// A batch is handed over at this many bytes even if not full.
pub const BATCH_BYTES: usize = 1024 * 1024;
/// How long a poll waits with nothing to do, bounding how late a stop is seen.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often an idle notification connection is asked `PING`, so that a
/// connection lost without a reset is noticed within `--timeout`.
const FEED_PING_EVERY: Duration = Duration::from_secs(5);
/// Most connections a far node is read over: its own and three readers.
const MOST_CONNECTIONS: usize = 4;

/// One source node: its connection and its scan, or (`--live`) a second
/// connection that receives the node's keyspace notifications.
#[derive(Debug)]
pub struct SourceNode {
    pub link: Link,
    pub scan: ScanRole,
    /// The ledger's index for this node.
    pub index: u16,
    /// For a notification connection: what it feeds.
    pub feed: Option<FeedOf>,
    /// More connections to the same server that read (DUMP) keys this
    /// node's SCANs find, when one connection cannot hold what the round
    /// trip does (see `SourceLoop::spread_reads`).
    pub readers: Vec<Token>,
    /// This node is a reader of another: it never scans.
    pub reader: bool,
    /// Whether the readers added helped ([`Spread`]).
    pub spread: Spread,
}

impl SourceNode {
    /// A node that scans (or, with `feed`, receives notifications).
    pub fn new(link: Link, scan: ScanRole, index: u16, feed: Option<FeedOf>) -> SourceNode {
        SourceNode {
            link,
            scan,
            index,
            feed,
            readers: Vec::new(),
            reader: false,
            spread: Spread::default(),
        }
    }
}

/// A notification connection of `--live`, and the node whose changes it
/// carries.
#[derive(Debug)]
pub struct FeedOf {
    pub feed: Feed,
    /// The scanning node of the same server.
    pub node: Token,
    /// The connection was lost: once subscribed again, rescan the node.
    lost: bool,
    ping_at: Instant,
    /// `PING`s sent on this connection and not answered yet.
    pongs_owed: u32,
    /// Where the feed is in the end of a live sync.
    end: FeedEnd,
}

/// How a notification connection ends a live sync. At the signal, rump
/// sends a last `PING` and keeps reading events until its answer: the
/// server sends a subscriber's messages in order, so every change made
/// before the signal (every write the application had acknowledged) has
/// then been seen, and is applied before rump exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedEnd {
    Following,
    /// The last `PING` is sent; events are read until its answer.
    Draining,
    /// Nothing more is read.
    Settled,
}

impl FeedOf {
    /// A feed whose subscription is already confirmed (at start-up).
    pub fn new(feed: Feed, node: Token) -> FeedOf {
        FeedOf {
            feed,
            node,
            lost: false,
            ping_at: Instant::now() + FEED_PING_EVERY,
            pongs_owed: 0,
            end: FeedEnd::Following,
        }
    }
}

impl HasLink for SourceNode {
    fn link(&self) -> &Link {
        &self.link
    }

    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

/// The source side of a server-to-anything migration.
#[derive(Debug)]
pub struct SourceLoop {
    nodes: Nodes<SourceNode>,
    tx: BatchSender,
    batch: Batch,
    held: Option<Batch>,
    /// The stream was marked complete for this epoch.
    completed: Option<u16>,
    epoch: u16,
    pacer: Option<Pacer>,
    stats: Arc<Stats>,
    control: Arc<Control>,
    ledger: Arc<Ledger>,
    /// For a cluster source, the node named by `-from` (its credentials
    /// reach every node) and how long a node may take to answer.
    cluster: Option<(ServerEndpoint, Duration)>,
    /// A redirect showed the source's slots moving (said once).
    resharded: bool,
    /// `--live`: the stream is complete only once draining is done.
    live: bool,
    /// `--live`: the scan's end was said; draining has begun.
    scan_said: bool,
    drained: bool,
    /// Far nodes may be read over more connections (not with `--live`:
    /// a changed key and its scanned copy must be read in order).
    readers_allowed: bool,
    /// Bytes one connection can have in flight: the kernel's largest
    /// socket buffers.
    per_connection: usize,
}

impl SourceLoop {
    /// A loop over `poll`, which must own the waker the target uses to wake
    /// this loop; nodes are added with [`SourceLoop::add`].
    pub fn new(
        poll: Poll,
        tx: BatchSender,
        rate: Option<u64>,
        stats: Arc<Stats>,
        control: Arc<Control>,
        ledger: Arc<Ledger>,
    ) -> SourceLoop {
        let epoch = control.epoch();
        SourceLoop {
            nodes: Nodes::new(poll),
            tx,
            batch: Batch::with_capacity(BATCH_ITEMS),
            held: None,
            completed: None,
            epoch,
            pacer: rate.map(|r| Pacer::new(r, Instant::now())),
            stats,
            control,
            ledger,
            cluster: None,
            resharded: false,
            live: false,
            scan_said: false,
            drained: false,
            readers_allowed: true,
            per_connection: crate::net::socket::largest_buffer(),
        }
    }

    /// `--live`: follow changes until [`Control::drain`].
    pub fn set_live(&mut self) {
        self.live = true;
        self.readers_allowed = false;
    }

    /// The source is a cluster reached through `seed`: a key a node
    /// redirects elsewhere is read on the node named, connected to if need
    /// be, within `timeout`.
    pub fn set_cluster(&mut self, seed: ServerEndpoint, timeout: Duration) {
        self.cluster = Some((seed, timeout));
    }

    /// The token the next node will get: its connection must be registered
    /// with this loop's poll under it.
    pub fn next_token(&self) -> Token {
        self.nodes.next_token()
    }

    pub fn registry(&self) -> &mio::Registry {
        self.nodes.registry()
    }

    /// Adds a node whose connection is registered under [`SourceLoop::next_token`].
    pub fn add(&mut self, node: SourceNode) -> Token {
        self.nodes.add(node)
    }

    /// Runs until every key is handed over and acknowledged, the target goes
    /// away, or a stop.
    pub fn run(mut self) -> Result<(), Error> {
        loop {
            if self.control.stopped() || self.control.finished() {
                return Ok(());
            }
            self.follow_epoch();
            if self.live {
                self.live_turn();
            }
            if let Some(batch) = self.held.take() {
                if !self.send(batch)? {
                    return Ok(());
                }
            }
            let mut busy = false;
            for token in self.nodes.tokens() {
                let is_feed = self
                    .nodes
                    .get_mut(token)
                    .is_some_and(|(n, _)| n.feed.is_some());
                busy |= match is_feed {
                    true => self.drive_feed(token)?,
                    false => self.drive(token)?,
                };
            }
            self.spread_reads()?;
            // A live sync ends only when drained: until then, changes come.
            let all_done =
                (!self.live || self.settled()) && self.nodes.iter().all(|n| n.scan.is_done());
            if self.held.is_none() && !self.batch.is_empty() && (all_done || self.idle()) {
                // Nothing in flight: hand over what we have rather than wait.
                let batch = self.take_batch();
                if !self.send(batch)? {
                    return Ok(());
                }
            }
            if all_done
                && self.held.is_none()
                && self.batch.is_empty()
                && self.completed != Some(self.epoch)
            {
                self.tx.complete(self.epoch);
                self.completed = Some(self.epoch);
            }
            let cap = self.pacer_wait();
            self.nodes.wait(busy, cap)?;
        }
    }

    /// One node's turn: reconnect if down, read replies, issue commands,
    /// write. `Ok(true)` when it could make progress without waiting.
    fn drive(&mut self, token: Token) -> Result<bool, Error> {
        let Some((node, registry)) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        if node.link.is_down() && node.scan.is_done() && self.completed == Some(self.epoch) {
            // Everything this server had is read: losing it now costs
            // nothing, unless the copy starts over (then it reconnects).
            return Ok(false);
        }
        if let LinkEvent::Restarted(info) = node.link.tick(registry, &self.stats)? {
            self.stats.notice(format!(
                "source {}: the server restarted (run_id changed): its SCAN cursor means \
                 nothing now, so the copy starts over",
                node.link.conn.name()
            ));
            node.scan.on_lost();
            let epoch = self.control.start_over(&self.stats);
            self.stats
                .total
                .store(info.dbsize, std::sync::atomic::Ordering::Relaxed);
            self.restart_all(epoch);
            return Ok(true);
        }
        if node.link.is_down() {
            return Ok(false);
        }
        let held = self.held.is_some();
        let result = step(node, &mut self.batch, held, self.pacer.as_mut());
        let busy = match result {
            Ok(busy) => {
                node.link.check_silence(registry, &self.stats)?;
                busy
            }
            Err(e) => {
                node.link.lose(e, registry, &self.stats)?;
                false
            }
        };
        if node.link.is_down() {
            node.scan.on_lost();
            return Ok(false);
        }
        let redirected = node.scan.take_redirected();
        for (key, page, redirect) in redirected {
            self.hand_over(key, page, &redirect)?;
        }
        if self.batch_is_full() && !held {
            let batch = self.take_batch();
            if !self.send(batch)? {
                self.control.stop();
            }
        }
        Ok(busy)
    }

    /// `--live` bookkeeping each turn: start draining when asked, say once
    /// when the scan is over, and publish the changes pending and the lag.
    fn live_turn(&mut self) {
        if self.control.draining() && !self.drained {
            self.drained = true;
            for node in self.nodes.iter_mut() {
                node.scan.stop_scanning();
                let Some(feed) = node.feed.as_mut() else {
                    continue;
                };
                if node.link.is_down() || !feed.feed.is_subscribed() {
                    // What it would have said is lost with it.
                    feed.end = FeedEnd::Settled;
                    continue;
                }
                node.link.conn.out().cmd().arg(b"PING").send();
                node.link.conn.owe(1);
                feed.pongs_owed += 1;
                feed.end = FeedEnd::Draining;
            }
        }
        let scanners = || self.nodes.iter().filter(|n| n.feed.is_none());
        if !self.scan_said && !self.drained && scanners().all(|n| n.scan.scan_done()) {
            self.scan_said = true;
            self.stats.notice(
                "the scan is complete; following changes until SIGINT or SIGTERM (Ctrl-C)".into(),
            );
        }
        let now = Instant::now();
        let (mut pending, mut oldest) = (0, None::<Instant>);
        for node in scanners() {
            let (n, at) = node.scan.dirty();
            pending += n as u64;
            oldest = match (oldest, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let lag = oldest.map_or(0, |at| now.duration_since(at).as_millis() as u64);
        self.stats
            .live_pending
            .store(pending, std::sync::atomic::Ordering::Relaxed);
        self.stats
            .live_lag_ms
            .store(lag, std::sync::atomic::Ordering::Relaxed);
    }

    /// `--live`: draining, and every notification connection has said
    /// what came before the signal.
    fn settled(&self) -> bool {
        self.drained
            && self
                .nodes
                .iter()
                .all(|n| n.feed.as_ref().map_or(true, |f| f.end == FeedEnd::Settled))
    }

    /// A notification connection's turn: reconnect (then subscribe again
    /// and rescan), read the events, mark each named key dirty on its node.
    /// Read whatever the target's speed, so the server never drops this
    /// client for a full output buffer.
    fn drive_feed(&mut self, token: Token) -> Result<bool, Error> {
        let Some((node, registry)) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        let Some(feed) = node.feed.as_mut() else {
            return Ok(false);
        };
        if feed.end == FeedEnd::Settled {
            // Changes after the signal are not followed.
            return Ok(false);
        }
        match node.link.tick(registry, &self.stats)? {
            LinkEvent::Steady => {}
            LinkEvent::Reconnected | LinkEvent::Restarted(_) if feed.end == FeedEnd::Draining => {
                // Lost while stopping: nothing is rescanned any more.
                lost_while_stopping(&self.stats, node.link.conn.name());
                feed.end = FeedEnd::Settled;
                return Ok(false);
            }
            LinkEvent::Reconnected | LinkEvent::Restarted(_) => {
                self.stats.notice(format!(
                    "source {}: the notification connection was lost; changes made meanwhile \
                     cannot be replayed, so the source is scanned again (keys deleted meanwhile \
                     stay on the target)",
                    node.link.conn.name()
                ));
                let owed = feed.feed.subscribe(node.link.conn.out());
                node.link.conn.owe(owed);
                feed.lost = true;
                feed.pongs_owed = 0;
            }
        }
        if node.link.is_down() {
            return Ok(false);
        }
        let mut changed = Vec::new();
        let conn = &mut node.link.conn;
        let mut read = || -> Result<(), Error> {
            while let Some(frame) = conn.next_frame()? {
                match feed.feed.on_frame(frame) {
                    Ok(FeedEvent::Changed { key, .. }) => changed.push(key),
                    Ok(FeedEvent::Pong) => {
                        feed.pongs_owed = feed.pongs_owed.saturating_sub(1);
                        if feed.end == FeedEnd::Draining && feed.pongs_owed == 0 {
                            feed.end = FeedEnd::Settled;
                            // What follows came after the signal.
                            break;
                        }
                    }
                    Ok(FeedEvent::Subscribed | FeedEvent::Other) => {}
                    Err(message) => {
                        return Err(Error::Server {
                            role: Role::Source,
                            endpoint: conn.name().to_string(),
                            command: "PSUBSCRIBE".into(),
                            message,
                        })
                    }
                }
            }
            let following = feed.end == FeedEnd::Following;
            if following && feed.pongs_owed == 0 && Instant::now() >= feed.ping_at {
                conn.out().cmd().arg(b"PING").send();
                conn.owe(1);
                feed.pongs_owed += 1;
                feed.ping_at = Instant::now() + FEED_PING_EVERY;
            }
            conn.flush()
        };
        let result = read();
        let rescan = feed.lost && feed.feed.is_subscribed();
        if rescan {
            feed.lost = false;
        }
        let target = feed.node;
        match result {
            Ok(()) => node.link.check_silence(registry, &self.stats)?,
            Err(e) => node.link.lose(e, registry, &self.stats)?,
        }
        if feed.end == FeedEnd::Draining && node.link.is_down() {
            lost_while_stopping(&self.stats, node.link.conn.name());
            feed.end = FeedEnd::Settled;
        }
        // Keys just marked are to be read at once: the next wait must not
        // sleep for an event before the scanner's turn issues their DUMPs.
        let busy = node.link.conn.may_read() || !changed.is_empty() || rescan;
        let now = Instant::now();
        if let Some((scanner, _)) = self.nodes.get_mut(target) {
            for key in changed {
                scanner.scan.mark_dirty(key, now);
            }
            if rescan {
                scanner.scan.rescan();
            }
        }
        Ok(busy)
    }

    /// A key whose DUMP was redirected (its slot moved, or is moving) is read
    /// on the node the redirect names, which is connected to if it is new.
    fn hand_over(&mut self, key: Bytes, page: PageId, redirect: &Redirect) -> Result<(), Error> {
        let Some((seed, timeout)) = &self.cluster else {
            return Err(Error::Protocol {
                role: Role::Source,
                endpoint: redirect.addr().to_string(),
                detail: "a redirect from a source that is not a cluster".into(),
            });
        };
        // Per redirected key: no slot map is built just to name the node.
        let endpoint = node_endpoint(seed, redirect.host(), redirect.port());
        let ask = matches!(redirect, Redirect::Ask { .. });
        if !self.resharded {
            self.resharded = true;
            // SCAN promises nothing about keys that move while it runs.
            self.stats.notice(format!(
                "source cluster: slot {} is moving to {} during the scan; keys moved while the \
                 scan runs can be missed by SCAN, so run rump again once the resharding is done \
                 (keys already copied are simply replaced)",
                redirect.slot(),
                redirect.addr()
            ));
        }
        for token in self.nodes.tokens() {
            if let Some((node, _)) = self.nodes.get_mut(token) {
                if node.feed.is_none() && node.link.conn.endpoint().addr == endpoint.addr {
                    node.scan.adopt(key, page, ask);
                    return Ok(());
                }
            }
        }
        let opts = match self.nodes.iter().next() {
            Some(node) => node.scan.options().clone(),
            None => return Ok(()),
        };
        let mut node = self.adopting_node(
            &endpoint,
            *timeout,
            opts,
            None,
            "connecting to a node the cluster announced",
        )?;
        node.scan.adopt(key, page, ask);
        self.nodes.add(node);
        Ok(())
    }

    /// A node of `endpoint` whose role only reads keys handed to it, its
    /// connection opening (`cause` says why, if it fails); counted by the
    /// ledger as node `index`, or as a node of its own. Add it next.
    fn adopting_node(
        &mut self,
        endpoint: &ServerEndpoint,
        timeout: Duration,
        opts: crate::engine::scan::ScanOptions,
        index: Option<u16>,
        cause: &str,
    ) -> Result<SourceNode, Error> {
        let token = self.nodes.next_token();
        let conn = Conn::open(
            Role::Source,
            endpoint,
            self.nodes.registry(),
            token,
            timeout,
        )?;
        let name = conn.name().to_string();
        let index = index.unwrap_or_else(|| self.ledger.add_node(&name, "", 0, "0"));
        let scan = ScanRole::new(
            index,
            &name,
            opts,
            self.epoch,
            "0",
            0,
            Arc::clone(&self.ledger),
            Arc::clone(&self.stats),
        )
        .adopting();
        Ok(SourceNode::new(
            Link::opening_for(conn, timeout, cause),
            scan,
            index,
            None,
        ))
    }

    /// Reads a far node's keys over more connections when one cannot hold
    /// what its round trip does: a connection has at most the kernel's
    /// largest socket buffer in flight, so at 80 ms a 4 MiB buffer carries
    /// 50 MiB/s whatever the windows. Adds a reader at a time (at most
    /// [`MOST_CONNECTIONS`] in all), each on trial ([`Spread`]: one that
    /// brings nothing is given up), and lends each reader found keys, as
    /// many as its window takes.
    fn spread_reads(&mut self) -> Result<(), Error> {
        if !self.readers_allowed {
            return Ok(());
        }
        let now = Instant::now();
        for token in self.nodes.tokens() {
            let readers = match self.nodes.get_mut(token) {
                Some((n, _)) if n.feed.is_none() && !n.reader && n.link.is_up() => {
                    n.readers.clone()
                }
                _ => continue,
            };
            let mut bytes = 0;
            for t in readers.iter().chain([&token]) {
                if let Some((n, _)) = self.nodes.get_mut(*t) {
                    bytes += n.scan.bytes_read();
                }
            }
            let Some((node, _)) = self.nodes.get_mut(token) else {
                continue;
            };
            node.spread.observe(now, bytes);
            let verdict = node.spread.verdict(now, bytes, node.link.conn.rtt());
            if verdict == Some(Verdict::GiveUp) && node.readers.pop().is_some() {
                // The reader reads what it has, and is lent nothing more.
                node.scan.set_feeds(1 + node.readers.len());
                self.stats.notice(format!(
                    "source {}: the connection added did not read faster (the server, not one \
                     connection, is the limit): back to {}",
                    node.link.conn.name(),
                    1 + node.readers.len()
                ));
            }
            let wanted = node
                .scan
                .connections_wanted(self.per_connection, MOST_CONNECTIONS);
            if wanted > 1 + node.readers.len() && node.spread.may_add() && !node.scan.scan_done() {
                node.spread.added(now, bytes);
                let reader = self.open_reader(token)?;
                if let Some((node, _)) = self.nodes.get_mut(token) {
                    node.readers.push(reader);
                    node.scan.set_feeds(1 + node.readers.len());
                    self.stats.notice(format!(
                        "source {}: reading over {} connections: one holds at most {} MiB in \
                         flight (the kernel's socket buffers), less than the round trip needs",
                        node.link.conn.name(),
                        1 + node.readers.len(),
                        self.per_connection / (1024 * 1024)
                    ));
                }
            }
            self.lend_to_readers(token);
        }
        Ok(())
    }

    /// Moves found keys from node `token` to its readers that have room.
    fn lend_to_readers(&mut self, token: Token) {
        let readers = match self.nodes.get_mut(token) {
            Some((node, _)) => node.readers.clone(),
            None => return,
        };
        for reader in readers {
            let room = match self.nodes.get_mut(reader) {
                Some((r, _)) if r.link.is_up() => r.scan.room(),
                _ => continue,
            };
            let keys = match self.nodes.get_mut(token) {
                // Half of what is in hand at most: the node reads too.
                Some((node, _)) => {
                    let half = node.scan.keys_in_hand() / 2;
                    node.scan.lend_keys(room.min(half))
                }
                None => return,
            };
            if let Some((r, _)) = self.nodes.get_mut(reader) {
                r.scan.borrow_keys(keys);
            }
        }
    }

    /// Opens a reader of node `token`: another connection to its server,
    /// whose role only reads keys lent to it.
    fn open_reader(&mut self, token: Token) -> Result<Token, Error> {
        let Some((node, _)) = self.nodes.get_mut(token) else {
            return Err(Error::Setup(std::io::Error::other("no such source node")));
        };
        let endpoint = node.link.conn.endpoint().clone();
        let timeout = node.link.timeout();
        let (index, opts) = (node.index, node.scan.options().clone());
        let mut node = self.adopting_node(
            &endpoint,
            timeout,
            opts,
            Some(index),
            "opening one more connection to read keys",
        )?;
        node.reader = true;
        Ok(self.nodes.add(node))
    }

    /// The copy epoch moved (the target restarted): start every scan over.
    fn follow_epoch(&mut self) {
        let epoch = self.control.epoch();
        if epoch != self.epoch {
            self.restart_all(epoch);
        }
    }

    fn restart_all(&mut self, epoch: u16) {
        self.epoch = epoch;
        self.batch = Batch::with_capacity(BATCH_ITEMS);
        // A held batch of the old epoch is dropped unsent: its budget was
        // never taken.
        self.held = None;
        for node in self.nodes.iter_mut() {
            if node.feed.is_some() {
                continue;
            }
            if !node.reader {
                self.ledger
                    .restart(node.index, epoch, &node.link.info.run_id);
            }
            node.scan.restart(epoch, node.link.info.dbsize);
        }
    }

    fn idle(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.scan.is_waiting() || n.link.is_down())
    }

    /// The longest sleep: [`IDLE_POLL`], or less when the pacer allows the
    /// next key sooner (the links' deadlines are the nodes' business).
    fn pacer_wait(&mut self) -> Duration {
        let want_keys = self.held.is_none() && self.nodes.iter().any(|n| n.scan.has_keys());
        match (&mut self.pacer, want_keys) {
            (Some(p), true) => p.wait(Instant::now()).min(IDLE_POLL),
            _ => IDLE_POLL,
        }
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
}

/// A notification connection lost after the signal: the changes it had not
/// delivered yet are not known, which is said.
fn lost_while_stopping(stats: &Stats, name: &str) {
    stats.notice(format!(
        "source {name}: the notification connection was lost while stopping; changes made just \
         before the signal may not be applied"
    ));
}

/// Reads what a ready node's server sent, issues what its windows allow and
/// writes it; `Ok(true)` when there is more to do at once.
fn step(
    node: &mut SourceNode,
    batch: &mut Batch,
    held: bool,
    pacer: Option<&mut Pacer>,
) -> Result<bool, Error> {
    let conn = &mut node.link.conn;
    if !held {
        let mut read = 0;
        while let Some(incoming) = conn.next_incoming()? {
            node.scan.on_reply(incoming, batch)?;
            read += 1;
            if batch.len() >= BATCH_ITEMS || batch.bytes >= BATCH_BYTES || read >= 4 * BATCH_ITEMS {
                break;
            }
        }
        node.scan.set_rtt(conn.rtt(), Instant::now());
        let owed = node.scan.issue(conn.out(), pacer);
        conn.owe(owed);
    }
    conn.flush()?;
    Ok((!held && conn.may_read()) || conn.may_write() || batch.len() >= BATCH_ITEMS)
}
