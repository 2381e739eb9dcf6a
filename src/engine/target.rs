//! The target loop: owns every target connection (one for a standalone
//! server, one per master for a cluster; a slab keyed by mio token), takes
//! batches from the channel, routes each item to the connection that must
//! write it, and drives each connection's restore role and link.
//!
//! Nothing is forgotten before it is acknowledged: an item stays in this
//! loop (queued on a node, waiting for a fresh slot map, or in flight in a
//! role) until a target answers for it, and only then is its share of the
//! channel's byte budget released and its page acknowledged in the ledger.
//! A lost connection puts its in-flight items back at the front of its
//! queue; a reply that means "not now" (LOADING, TRYAGAIN, CLUSTERDOWN)
//! puts its item back after a pause; `MOVED` parks it until the cluster's
//! new slot map is read; `ASK` sends it, after `ASKING`, to the node named.
//! A target that restarted may have lost what it acknowledged, so the copy
//! starts over ([`Control::start_over`]) and everything of the earlier pass
//! is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Token};
use resp::Frame;

use crate::cluster::redirect::Redirect;
use crate::cluster::topology::Topology;
use crate::config::ServerEndpoint;
use crate::engine::clock::{backoff, now_ms};
use crate::engine::control::Control;
use crate::engine::item::Item;
use crate::engine::ledger::{Acks, Ledger};
use crate::engine::link::{Link, LinkEvent};
use crate::engine::nodes::{HasLink, Nodes};
use crate::engine::pipe::{BatchReceiver, RecvError};
use crate::engine::restore::{Outcome, Reply, RestoreOptions, RestoreRole, Unsent};
use crate::engine::route::Route;
use crate::engine::spread::{Spread, Verdict};
use crate::error::{quote_key, Error, Role};
use crate::net::conn::Conn;
use crate::net::ServerInfo;
use crate::progress::Stats;

/// Most bytes queued for one socket at once; with the pipeline window this
/// bounds what the target side holds, whatever the value sizes.
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// Items taken from the channel ahead of what is in flight.
const QUEUE_AHEAD: usize = 1024;
/// Most connections to a standalone target: its own and three writers.
const MOST_CONNECTIONS: usize = 4;
/// After a stop, how long in-flight writes get to be acknowledged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(100);

/// An item waiting to be sent.
#[derive(Debug)]
struct Queued {
    item: Item,
    /// Send `ASKING` first: this node is importing the key's slot.
    asking: bool,
}

/// One target connection, its restores, and what waits to go out on it.
#[derive(Debug)]
pub struct TargetNode {
    pub link: Link,
    pub restore: RestoreRole,
    queue: VecDeque<Queued>,
}

impl TargetNode {
    pub fn new(link: Link, restore: RestoreRole) -> TargetNode {
        TargetNode {
            link,
            restore,
            queue: VecDeque::new(),
        }
    }

    /// Nothing queued and nothing unanswered.
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.restore.owed() == 0
    }
}

impl HasLink for TargetNode {
    fn link(&self) -> &Link {
        &self.link
    }

    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

/// A reply that said "not now", and since when replies have said so.
#[derive(Debug)]
struct Retry {
    since: Instant,
    at: Instant,
    attempts: u32,
}

/// This loop's accounting, apart from the connections so that a node and
/// the accounting can be borrowed together.
#[derive(Debug)]
struct Work {
    /// The copy pass; items of an earlier one count for nothing.
    epoch: u16,
    acks: Acks,
    /// Budget to give back to the channel at the end of this turn.
    released: usize,
    retry: Option<Retry>,
    /// Items whose node is not known until the slot map is read again.
    limbo: Vec<Item>,
    /// Items an `ASK` sends to another node.
    asked: Vec<(Item, Redirect)>,
    /// Topology replies to apply.
    topologies: Vec<Frame>,
    timeout: Duration,
    stats: Arc<Stats>,
    /// Rewriting values for an older target was said.
    said_transcoding: bool,
}

/// The target side of a migration into a server or a cluster.
#[derive(Debug)]
pub struct TargetLoop {
    nodes: Nodes<TargetNode>,
    route: Route,
    rx: BatchReceiver,
    work: Work,
    opts: RestoreOptions,
    source_done: bool,
    /// The source stopped before the end (it failed or was stopped).
    abandoned: bool,
    /// The masters of the last topology applied, to say when they change.
    masters: Vec<String>,
    control: Arc<Control>,
    ledger: Arc<Ledger>,
    /// A far standalone target may be written over more connections (not
    /// with `--live`, whose writes of one key must stay in order even as
    /// connections are added).
    writers_allowed: bool,
    /// Bytes one connection can have in flight: the kernel's largest
    /// socket buffers.
    per_connection: usize,
    /// Whether the writers added helped.
    spread: Spread,
}

impl TargetLoop {
    /// A loop over `poll`, which must own the waker the source uses to wake
    /// this loop. `route` says where items go; its tokens are those of the
    /// nodes [`TargetLoop::add`]ed.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        rx: BatchReceiver,
        route: Route,
        opts: RestoreOptions,
        timeout: Duration,
        stats: Arc<Stats>,
        control: Arc<Control>,
        ledger: Arc<Ledger>,
    ) -> TargetLoop {
        let work = Work {
            epoch: control.epoch(),
            acks: Acks::default(),
            released: 0,
            retry: None,
            limbo: Vec::new(),
            asked: Vec::new(),
            topologies: Vec::new(),
            timeout,
            stats,
            said_transcoding: false,
        };
        TargetLoop {
            nodes: Nodes::new(poll),
            route,
            rx,
            work,
            opts,
            source_done: false,
            abandoned: false,
            masters: Vec::new(),
            control,
            ledger,
            writers_allowed: true,
            per_connection: crate::net::socket::largest_buffer(),
            spread: Spread::default(),
        }
    }

    /// `--live`: one connection per target node, so that every write of a
    /// key goes out on the same one, in order.
    pub fn set_live(&mut self) {
        self.writers_allowed = false;
    }

    /// Writes to a far standalone target over more connections when one
    /// cannot hold what its round trip does (a TCP connection has at most
    /// the kernel's largest socket buffer in flight): one more at a time,
    /// at most [`MOST_CONNECTIONS`], keys spread by hash slot.
    fn spread_writes(&mut self) -> Result<(), Error> {
        let Route::Single(tokens) = &self.route else {
            return Ok(());
        };
        if !self.writers_allowed || self.source_done {
            return Ok(());
        }
        let (count, first) = (tokens.len(), tokens[0]);
        let now = Instant::now();
        let bytes: u64 = self.nodes.iter().map(|n| n.restore.bytes_written()).sum();
        self.spread.observe(now, bytes);
        let Some((node, _)) = self.nodes.get_mut(first) else {
            return Ok(());
        };
        let name = node.link.conn.name().to_string();
        if self.spread.verdict(now, bytes, node.link.conn.rtt()) == Some(Verdict::GiveUp) {
            if let Route::Single(tokens) = &mut self.route {
                // The writer sends what it has; no new key goes to it.
                if tokens.len() > 1 {
                    tokens.pop();
                }
                self.work.stats.notice(format!(
                    "target {name}: the connection added did not write faster (the server, not \
                     one connection, is the limit): back to {}",
                    tokens.len()
                ));
            }
            return Ok(());
        }
        let Some((node, _)) = self.nodes.get_mut(first) else {
            return Ok(());
        };
        let wanted = node
            .restore
            .connections_wanted(self.per_connection, count, MOST_CONNECTIONS);
        if wanted <= count || !self.spread.may_add() || !node.link.is_up() {
            return Ok(());
        }
        self.spread.added(now, bytes);
        let endpoint = node.link.conn.endpoint().clone();
        let info = node.link.info.clone();
        let token = self.open_node(
            &endpoint,
            &info,
            "opening one more connection to write keys",
        )?;
        if let Route::Single(tokens) = &mut self.route {
            tokens.push(token);
            self.work.stats.notice(format!(
                "target {name}: writing over {} connections: one holds at most {} MiB in flight \
                 (the kernel's socket buffers), less than the round trip needs",
                tokens.len(),
                self.per_connection / (1024 * 1024)
            ));
        }
        Ok(())
    }

    /// The token the next node will get.
    pub fn next_token(&self) -> Token {
        self.nodes.next_token()
    }

    pub fn registry(&self) -> &mio::Registry {
        self.nodes.registry()
    }

    pub fn add(&mut self, node: TargetNode) -> Token {
        self.nodes.add(node)
    }

    /// The slot map of a cluster target, from the topology its nodes gave
    /// at start-up (every master must already be added).
    pub fn use_topology(&mut self, topology: &Topology) {
        self.apply_topology(topology);
    }

    /// Runs until the source is done and every write is acknowledged, or a
    /// stop (then in-flight writes get five seconds to finish).
    pub fn run(mut self) -> Result<(), Error> {
        let mut stopped_at: Option<Instant> = None;
        loop {
            if stopped_at.is_none() && self.control.stopped() {
                stopped_at = Some(Instant::now());
                // Items received but not yet sent are dropped.
                self.drop_queued();
            }
            if self.control.epoch() != self.work.epoch {
                self.start_over(self.control.epoch());
            }
            if stopped_at.is_none() {
                self.receive();
            }
            let mut busy = false;
            for token in self.nodes.tokens() {
                busy |= self.drive(token, stopped_at.is_some())?;
            }
            busy |= self.follow_cluster()?;
            self.spread_writes()?;
            // The queues may have emptied while the channel still holds
            // batches: take them now, not when the next reply comes, a
            // round trip away from a far target.
            if stopped_at.is_none() && self.receive() {
                busy |= self
                    .nodes
                    .iter()
                    .any(|n| !n.queue.is_empty() && n.restore.has_room());
            }
            self.work.acks.flush(&self.ledger);
            if self.work.released > 0 {
                self.rx.release(std::mem::take(&mut self.work.released));
            }

            let idle = self.work.limbo.is_empty() && self.nodes.iter().all(TargetNode::is_idle);
            if idle && stopped_at.is_some() {
                return Ok(());
            }
            if idle && self.source_done {
                for node in self.nodes.iter_mut() {
                    node.link.conn.shutdown_write();
                }
                if !self.abandoned {
                    self.control.finish();
                }
                return Ok(());
            }
            if stopped_at.is_some_and(|t| t.elapsed() > DRAIN_TIMEOUT) {
                return Ok(());
            }
            let cap = match &self.work.retry {
                Some(retry) => retry
                    .at
                    .saturating_duration_since(Instant::now())
                    .min(IDLE_POLL),
                None => IDLE_POLL,
            };
            self.nodes.wait(busy, cap)?;
        }
    }

    /// Items queued on every node.
    fn queued(&self) -> usize {
        self.nodes.iter().map(|n| n.queue.len()).sum()
    }

    /// Takes batches from the channel while the queues are short; true if
    /// it took any.
    fn receive(&mut self) -> bool {
        let mut took = false;
        while !self.source_done && self.queued() < QUEUE_AHEAD {
            match self.rx.try_recv(self.work.epoch) {
                Ok(batch) => {
                    took = true;
                    for item in batch.items {
                        if item.page.epoch() == self.work.epoch {
                            self.route_item(item, false);
                        } else {
                            self.work.released += item.cost();
                        }
                    }
                }
                Err(RecvError::Empty) => break,
                // An abandoned stream still ends here: every key the source
                // sent is written; its error is its own.
                Err(RecvError::Done) => self.source_done = true,
                Err(RecvError::Abandoned) => {
                    self.source_done = true;
                    self.abandoned = true;
                }
            }
        }
        took
    }

    /// Queues an item on the node its key belongs to (first in line when it
    /// comes back from a redirect), or parks it until the map is fresh.
    fn route_item(&mut self, item: Item, again: bool) {
        let Some(token) = self.route.token_for(&item.key) else {
            self.work.limbo.push(item);
            return;
        };
        match self.nodes.get_mut(token) {
            Some((node, _)) if again => node.queue.push_front(Queued {
                item,
                asking: false,
            }),
            Some((node, _)) => node.queue.push_back(Queued {
                item,
                asking: false,
            }),
            None => self.work.limbo.push(item),
        }
    }

    /// One node's turn. `Ok(true)` when it could make progress at once.
    fn drive(&mut self, token: Token, stopping: bool) -> Result<bool, Error> {
        let Some((node, registry)) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        let stats = &self.work.stats;
        match node.link.tick(registry, stats)? {
            LinkEvent::Steady => {}
            LinkEvent::Reconnected => {
                let info = node.link.info.clone();
                node.restore.update_server(&info);
                if let (Some(topology), Some(_)) = (&info.topology, self.route.cluster()) {
                    self.apply_topology(topology);
                }
            }
            LinkEvent::Restarted(info) => {
                node.restore.update_server(&info);
                stats.notice(format!(
                    "target {}: the server restarted (run_id changed) and may have lost what it \
                     had acknowledged, so the copy starts over",
                    node.link.conn.name()
                ));
                let epoch = self.control.start_over(stats);
                self.start_over(epoch);
                return Ok(true);
            }
        }
        let Some((node, registry)) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        if node.link.is_down() {
            // A lost master may have failed over: read the map again.
            if let Some(cluster) = self.route.cluster() {
                cluster.stale = true;
            }
            return Ok(false);
        }
        let busy = match self.work.step(node, stopping) {
            Ok(busy) => {
                node.link.check_silence(registry, &self.work.stats)?;
                busy
            }
            Err(e) => {
                node.link.lose(e, registry, &self.work.stats)?;
                false
            }
        };
        if !node.link.is_down() {
            return Ok(busy);
        }
        // Sent and not acknowledged: to be sent again, first, in order.
        for item in node.restore.take_in_flight().into_iter().rev() {
            node.queue.push_front(Queued {
                item,
                asking: false,
            });
        }
        Ok(false)
    }

    /// Cluster bookkeeping after every node's turn: items an `ASK` sent
    /// elsewhere, topology replies, a query when the map is stale, and
    /// nodes no longer needed. `Ok(true)` when there is more to do at once.
    fn follow_cluster(&mut self) -> Result<bool, Error> {
        let mut busy = false;
        for (item, redirect) in std::mem::take(&mut self.work.asked) {
            let token = self.node_at(redirect.host(), redirect.port())?;
            if let Some((node, _)) = self.nodes.get_mut(token) {
                node.queue.push_front(Queued { item, asking: true });
                busy = true;
            }
        }
        for frame in std::mem::take(&mut self.work.topologies) {
            let Some(cluster) = self.route.cluster() else {
                continue;
            };
            let parsed = match &frame {
                // Before Redis 7.0 there is no CLUSTER SHARDS: ask the older way.
                Frame::Error(_) if cluster.shards => {
                    cluster.shards = false;
                    cluster.stale = true;
                    continue;
                }
                _ if cluster.shards => Topology::from_cluster_shards(&frame),
                _ => Topology::from_cluster_slots(&frame),
            };
            match parsed {
                Ok(topology) => {
                    self.apply_topology(&topology);
                    busy = true;
                }
                Err(e) => {
                    return Err(Error::Protocol {
                        role: Role::Target,
                        endpoint: self.route_seed_name(),
                        detail: format!("cannot read the cluster topology: {e}"),
                    })
                }
            }
        }
        if !self.work.limbo.is_empty() {
            if let Some(cluster) = self.route.cluster() {
                cluster.stale = true;
            }
        }
        self.query_topology_if_due();
        Ok(busy)
    }

    fn route_seed_name(&mut self) -> String {
        self.route
            .cluster()
            .map_or_else(String::new, |c| c.seed.to_string())
    }

    /// Sends a topology query on a ready node when the map is stale.
    fn query_topology_if_due(&mut self) {
        let Some(cluster) = self.route.cluster() else {
            return;
        };
        if !cluster.query_due() {
            return;
        }
        let shards = cluster.shards;
        if self.nodes.iter().any(|n| n.restore.querying_topology()) {
            return;
        }
        for token in self.nodes.tokens() {
            let Some((node, _)) = self.nodes.get_mut(token) else {
                continue;
            };
            if node.link.is_up() {
                node.restore.query_topology(node.link.conn.out(), shards);
                node.link.conn.owe(1);
                if let Some(cluster) = self.route.cluster() {
                    cluster.queried();
                }
                return;
            }
        }
    }

    /// The node at `host:port`, opened (and added) if it is new.
    fn node_at(&mut self, host: &str, port: u16) -> Result<Token, Error> {
        let endpoint = match self.route.cluster() {
            Some(cluster) => cluster.endpoint_of(host, port),
            None => {
                return Err(Error::Protocol {
                    role: Role::Target,
                    endpoint: format!("{host}:{port}"),
                    detail: "a redirect from a target that is not a cluster".into(),
                })
            }
        };
        for token in self.nodes.tokens() {
            if let Some((node, _)) = self.nodes.get_mut(token) {
                if node.link.conn.endpoint().addr == endpoint.addr {
                    return Ok(token);
                }
            }
        }
        self.open_node(
            &endpoint,
            &ServerInfo::default(),
            "connecting to a node the cluster announced",
        )
    }

    /// Opens a connection to `endpoint`, a server `info` describes as far
    /// as known, as a new node (`cause` says why, if it fails).
    fn open_node(
        &mut self,
        endpoint: &ServerEndpoint,
        info: &ServerInfo,
        cause: &str,
    ) -> Result<Token, Error> {
        let token = self.nodes.next_token();
        let conn = Conn::open(
            Role::Target,
            endpoint,
            self.nodes.registry(),
            token,
            self.work.timeout,
        )?;
        let restore = RestoreRole::new(conn.name(), self.opts.clone(), info);
        let link = Link::opening_for(conn, self.work.timeout, cause);
        Ok(self.nodes.add(TargetNode::new(link, restore)))
    }

    /// Takes a fresh topology: opens connections to new masters, replaces
    /// the slot map, sends everything queued or parked to where the map now
    /// says, and closes nodes that no longer serve any slot once they are
    /// idle.
    fn apply_topology(&mut self, topology: &Topology) {
        let mut masters: Vec<String> = topology
            .shards()
            .iter()
            .filter(|s| !s.slots.is_empty())
            .map(|s| s.master.addr())
            .collect();
        masters.sort();
        if !self.masters.is_empty() && masters != self.masters {
            self.work.stats.notice(format!(
                "target cluster: the masters are now {}; following the new slot map",
                masters.join(", ")
            ));
        }
        self.masters = masters;
        let mut tokens = Vec::new();
        for master in topology.masters() {
            let port = master.port_for(self.route.cluster().is_some_and(|c| c.seed.tls));
            match self.node_at(&master.host, port) {
                Ok(token) => tokens.push((master.clone(), token)),
                // Cannot even start a connect (the name does not resolve):
                // its slots stay unowned, and the map is asked for again.
                Err(e) => self
                    .work
                    .stats
                    .notice(format!("{e}; asking the cluster again")),
            }
        }
        if let Some(cluster) = self.route.cluster() {
            cluster.replace(topology, |node| {
                tokens.iter().find(|(m, _)| m == node).map(|(_, t)| *t)
            });
        }
        let mut again: Vec<Item> = std::mem::take(&mut self.work.limbo);
        for node in self.nodes.iter_mut() {
            again.extend(node.queue.drain(..).map(|q| q.item));
        }
        for item in again {
            self.route_item(item, false);
        }
        // Nodes that serve nothing and hold nothing are closed.
        let mut unused = Vec::new();
        if let Route::Cluster(cluster) = &self.route {
            for token in self.nodes.tokens() {
                if let Some((node, _)) = self.nodes.get_mut(token) {
                    if !cluster.serves(token) && node.is_idle() {
                        unused.push(token);
                    }
                }
            }
        }
        for token in unused {
            if let Some((node, registry)) = self.nodes.get_mut(token) {
                node.link.conn.close(registry);
            }
            self.nodes.remove(token);
        }
    }

    /// The copy starts over in `epoch`: everything of the earlier pass that
    /// is queued is dropped. RESTOREs still in flight are answered as usual,
    /// but count for nothing (see [`Work::step`]).
    fn start_over(&mut self, epoch: u16) {
        self.work.epoch = epoch;
        self.work.retry = None;
        self.drop_queued();
        self.source_done = false;
    }

    /// Drops every item not yet sent.
    fn drop_queued(&mut self) {
        let mut released = 0;
        for node in self.nodes.iter_mut() {
            released += node.queue.drain(..).map(|q| q.item.cost()).sum::<usize>();
        }
        released += self.work.limbo.drain(..).map(|i| i.cost()).sum::<usize>();
        released += self
            .work
            .asked
            .drain(..)
            .map(|(i, _)| i.cost())
            .sum::<usize>();
        self.work.released += released;
    }
}

impl Work {
    /// Reads a node's replies, sends what its windows allow, writes.
    fn step(&mut self, node: &mut TargetNode, stopping: bool) -> Result<bool, Error> {
        while let Some(frame) = node.link.conn.next_frame()? {
            let (item, outcome) = match node.restore.on_reply(frame)? {
                Reply::Restored(item, outcome) => (item, outcome),
                Reply::Topology(frame) => {
                    self.topologies.push(frame);
                    continue;
                }
                Reply::Asking => continue,
            };
            if item.page.epoch() != self.epoch {
                // Sent before the copy started over; the new pass sends it again.
                self.released += item.cost();
                continue;
            }
            match outcome {
                Outcome::Retry => {
                    self.retry_later(node, item)?;
                    continue;
                }
                Outcome::Redirected(redirect @ Redirect::Ask { .. }) => {
                    self.asked.push((item, redirect));
                    continue;
                }
                Outcome::Redirected(Redirect::Moved { .. }) => {
                    self.limbo.push(item);
                    continue;
                }
                Outcome::Copied => {
                    self.retry = None;
                    let counter = match item.page.is_live() {
                        true => &self.stats.live_applied,
                        false => &self.stats.copied,
                    };
                    Stats::add(counter, 1);
                    Stats::add(&self.stats.bytes, item.payload.len() as u64);
                }
                Outcome::Deleted => {
                    self.retry = None;
                    Stats::add(&self.stats.live_deleted, 1);
                }
                Outcome::Skipped => Stats::add(&self.stats.skipped, 1),
                Outcome::Failed(message) => self.stats.fail(message),
            }
            self.done(&item);
        }
        let transcoded = node.restore.take_transcoded();
        if transcoded > 0 {
            Stats::add(&self.stats.transcoded, transcoded);
            if !self.said_transcoding {
                self.said_transcoding = true;
                self.stats.notice(format!(
                    "target {}: it reads DUMP payloads only up to RDB {}, older than the \
                     source's: values are rewritten for it (counted as transcoded)",
                    node.link.conn.name(),
                    node.restore
                        .target_rdb()
                        .map_or_else(|| "?".to_string(), |v| v.to_string())
                ));
            }
        }
        let paused = self.retry.as_ref().is_some_and(|r| Instant::now() < r.at);
        let sending = !stopping && !paused;
        if sending {
            let now = now_ms();
            node.restore.set_rtt(node.link.conn.rtt(), Instant::now());
            let mut owed = 0;
            while node.restore.has_room() && node.link.conn.queued() < MAX_QUEUED_BYTES {
                let Some(Queued { item, asking }) = node.queue.pop_front() else {
                    break;
                };
                match node.restore.send(item, asking, node.link.conn.out(), now) {
                    Ok(commands) => owed += commands,
                    Err(Unsent::Expired(expired)) => {
                        Stats::add(&self.stats.vanished, 1);
                        self.done(&expired);
                    }
                    Err(Unsent::Failed(item, message)) => {
                        self.stats.fail(message);
                        self.done(&item);
                    }
                }
            }
            node.link.conn.owe(owed);
        }
        node.link.conn.flush()?;
        // More to send at once only while the socket takes it: a full socket
        // (a server that stopped reading) means waiting for an event.
        let can_send = sending
            && !node.queue.is_empty()
            && node.restore.has_room()
            && node.link.conn.queued() < MAX_QUEUED_BYTES;
        Ok(node.link.conn.may_read() || node.link.conn.may_write() || can_send)
    }

    /// A reply said "not now": the item goes back first in line, and sending
    /// pauses with backoff, for up to the timeout.
    fn retry_later(&mut self, node: &mut TargetNode, item: Item) -> Result<(), Error> {
        let now = Instant::now();
        let retry = self.retry.get_or_insert(Retry {
            since: now,
            at: now,
            attempts: 0,
        });
        if now.duration_since(retry.since) > self.timeout {
            return Err(Error::Server {
                role: Role::Target,
                endpoint: node.link.conn.name().to_string(),
                command: format!("RESTORE {}", quote_key(&item.key)),
                message: format!(
                    "the target kept answering \"not now\" for {} s",
                    self.timeout.as_secs_f64()
                ),
            });
        }
        retry.at = now + backoff(retry.attempts);
        retry.attempts += 1;
        node.queue.push_front(Queued {
            item,
            asking: false,
        });
        Ok(())
    }

    /// The target answered for `item`: its page is acknowledged and its
    /// budget released.
    fn done(&mut self, item: &Item) {
        self.acks.push(item.page);
        self.released += item.cost();
    }
}
