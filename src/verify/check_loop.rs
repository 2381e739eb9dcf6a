//! The verify's target loop: in place of the copy's target loop, it takes
//! the source's items from the same channel (so the scan, its filters, the
//! cluster source and the dump-file source all work as they do for a copy),
//! reads each key on the target with a [`CheckRole`] per connection, and
//! hands both to the [`Judge`].
//!
//! It owns every target connection (one for a standalone server, one per
//! master of a cluster, plus any node a redirect names) in a slab keyed by
//! mio token, each behind a [`Link`] that reconnects. A cluster key goes to
//! the master the start-up topology names for its slot; a `MOVED` or `ASK`
//! sends that one key where the reply says, so a resharding costs a round
//! trip per moved key and no map refresh (the verify writes nothing that
//! could land on the wrong node).
//!
//! Each item is held until the target has answered for it and the judge has
//! it; then its share of the channel's byte budget is released.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Token};

use crate::cluster::redirect::Redirect;
use crate::cluster::topology::Topology;
use crate::config::ServerEndpoint;
use crate::engine::clock::now_ms;
use crate::engine::control::Control;
use crate::engine::item::Item;
use crate::engine::ledger::{Acks, Ledger};
use crate::engine::link::{Link, LinkEvent};
use crate::engine::nodes::{HasLink, Nodes};
use crate::engine::pipe::{BatchReceiver, RecvError};
use crate::engine::route::{ClusterRoute, Route};
use crate::error::{Error, Role};
use crate::net::conn::Conn;
use crate::net::ServerInfo;
use crate::progress::Stats;
use crate::verify::check::{CheckRole, Checked};
use crate::verify::judge::Judge;
use crate::verify::tally::Difference;

/// Items taken from the channel ahead of what is in flight.
const QUEUE_AHEAD: usize = 1024;
/// Most bytes queued for one socket at once.
const MAX_QUEUED_BYTES: usize = 1024 * 1024;
/// After a stop, how long the reads in flight get to be answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(100);

/// One target connection, its reads, and what waits to go out on it.
#[derive(Debug)]
pub struct CheckNode {
    link: Link,
    role: CheckRole,
    /// Items to read, and whether `ASKING` goes first.
    queue: VecDeque<(Item, bool)>,
}

impl HasLink for CheckNode {
    fn link(&self) -> &Link {
        &self.link
    }

    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

impl CheckNode {
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.role.in_flight() == 0
    }
}

/// What the loop reads with.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    pub pipeline: u32,
    /// Expiry is compared (not `--no-ttl`).
    pub compare_ttl: bool,
    pub timeout: Duration,
}

/// The accounting, apart from the connections so both can be borrowed.
#[derive(Debug)]
struct Work {
    judge: Judge,
    epoch: u16,
    acks: Acks,
    released: usize,
    /// Items a redirect sends to another node.
    redirected: Vec<(Item, Redirect)>,
    /// The pass's counters (`compared` is the progress line's).
    stats: Arc<Stats>,
}

/// The target side of a verify.
#[derive(Debug)]
pub struct CheckLoop {
    nodes: Nodes<CheckNode>,
    route: Route,
    rx: BatchReceiver,
    work: Work,
    opts: CheckOptions,
    source_done: bool,
    abandoned: bool,
    control: Arc<Control>,
    ledger: Arc<Ledger>,
}

impl CheckLoop {
    /// A loop over `poll`, which must own the waker the source uses to wake
    /// it; nodes are added with [`CheckLoop::add`]. `cluster` is the seed
    /// of a cluster target.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        rx: BatchReceiver,
        cluster: Option<ServerEndpoint>,
        judge: Judge,
        opts: CheckOptions,
        stats: Arc<Stats>,
        control: Arc<Control>,
        ledger: Arc<Ledger>,
    ) -> CheckLoop {
        let route = match cluster {
            Some(seed) => Route::Cluster(ClusterRoute::new(seed, true)),
            None => Route::Single(vec![Token(1)]),
        };
        CheckLoop {
            nodes: Nodes::new(poll),
            route,
            rx,
            work: Work {
                judge,
                epoch: control.epoch(),
                acks: Acks::default(),
                released: 0,
                redirected: Vec::new(),
                stats,
            },
            opts,
            source_done: false,
            abandoned: false,
            control,
            ledger,
        }
    }

    /// The token the next node gets: its connection must be registered with
    /// this loop's poll under it.
    pub fn next_token(&self) -> Token {
        self.nodes.next_token()
    }

    pub fn registry(&self) -> &mio::Registry {
        self.nodes.registry()
    }

    /// Adds a node whose handshake is done, registered under
    /// [`CheckLoop::next_token`].
    pub fn add(&mut self, conn: Conn, info: ServerInfo) -> Token {
        let role = CheckRole::new(
            conn.name(),
            self.opts.pipeline,
            self.opts.compare_ttl,
            &info,
        );
        self.nodes.add(CheckNode {
            link: Link::new(conn, info, self.opts.timeout),
            role,
            queue: VecDeque::new(),
        })
    }

    /// The slot map of a cluster target (every master already added).
    pub fn use_topology(&mut self, topology: &Topology) {
        let tokens: Vec<(Token, crate::config::ServerAddr)> = self
            .nodes
            .tokens()
            .into_iter()
            .filter_map(|t| {
                let (node, _) = self.nodes.get_mut(t)?;
                Some((t, node.link.conn.endpoint().addr.clone()))
            })
            .collect();
        if let Some(cluster) = self.route.cluster() {
            let seed = cluster.seed.clone();
            cluster.replace(topology, |master| {
                let addr =
                    crate::engine::route::node_endpoint(&seed, &master.host, master.port).addr;
                tokens.iter().find(|(_, a)| *a == addr).map(|(t, _)| *t)
            });
        }
    }

    /// Runs until every key the source sends is compared (and the
    /// differences re-checked), or a stop.
    pub fn run(mut self) -> Result<(), Error> {
        let mut stopped_at: Option<Instant> = None;
        loop {
            if stopped_at.is_none() && self.control.stopped() {
                stopped_at = Some(Instant::now());
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
            for (item, redirect) in std::mem::take(&mut self.work.redirected) {
                let token = self.node_at(redirect.host(), redirect.port())?;
                if let Some((node, _)) = self.nodes.get_mut(token) {
                    node.queue
                        .push_front((item, matches!(redirect, Redirect::Ask { .. })));
                }
                busy = true;
            }
            self.work.acks.flush(&self.ledger);
            if self.work.released > 0 {
                self.rx.release(std::mem::take(&mut self.work.released));
            }
            let idle = self.nodes.iter().all(CheckNode::is_idle);
            if idle && stopped_at.is_some() {
                return Ok(());
            }
            if idle && self.source_done {
                for node in self.nodes.iter_mut() {
                    node.link.conn.shutdown_write();
                }
                if self.abandoned {
                    // The source failed: its error is the one to report.
                    return self.work.judge.resolve();
                }
                // The source may close now; the re-check runs on its own
                // connections.
                self.control.finish();
                return self.work.judge.finish();
            }
            if stopped_at.is_some_and(|t| t.elapsed() > DRAIN_TIMEOUT) {
                return Ok(());
            }
            self.nodes.wait(busy, IDLE_POLL)?;
        }
    }

    fn queued(&self) -> usize {
        self.nodes.iter().map(|n| n.queue.len()).sum()
    }

    /// Takes batches from the channel while the queues are short.
    fn receive(&mut self) {
        while !self.source_done && self.queued() < QUEUE_AHEAD {
            match self.rx.try_recv(self.work.epoch) {
                Ok(batch) => {
                    for item in batch.items {
                        if item.page.epoch() == self.work.epoch {
                            self.route_item(item);
                        } else {
                            self.work.released += item.cost();
                        }
                    }
                }
                Err(RecvError::Empty) => break,
                Err(RecvError::Done) => self.source_done = true,
                Err(RecvError::Abandoned) => {
                    self.source_done = true;
                    self.abandoned = true;
                }
            }
        }
    }

    /// Queues an item on the node its key belongs to. A slot the start-up
    /// map does not know goes to any node, whose redirect names the owner.
    fn route_item(&mut self, item: Item) {
        let token = self
            .route
            .token_for(&item.key)
            .or_else(|| self.nodes.tokens().first().copied());
        match token.and_then(|t| self.nodes.get_mut(t)) {
            Some((node, _)) => node.queue.push_back((item, false)),
            None => self.work.released += item.cost(),
        }
    }

    /// One node's turn; `Ok(true)` when it could make progress at once.
    fn drive(&mut self, token: Token, stopping: bool) -> Result<bool, Error> {
        let Some((node, registry)) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        match node.link.tick(registry, &self.work.stats)? {
            LinkEvent::Steady => {}
            LinkEvent::Reconnected => {
                let info = node.link.info.clone();
                node.role.update_server(&info);
            }
            LinkEvent::Restarted(info) => {
                node.role.update_server(&info);
                self.work.stats.notice(format!(
                    "target {}: the server restarted (run_id changed); the verify goes on with \
                     what it holds now",
                    node.link.conn.name()
                ));
            }
        }
        if node.link.is_down() {
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
        if node.link.is_down() {
            // Asked and not answered: read again, first, in order.
            for item in node.role.take_in_flight().into_iter().rev() {
                node.queue.push_front((item, false));
            }
            return Ok(false);
        }
        Ok(busy)
    }

    /// The node at `host:port`, opened (and added) if it is new.
    fn node_at(&mut self, host: &str, port: u16) -> Result<Token, Error> {
        let Some(cluster) = self.route.cluster() else {
            return Err(Error::Protocol {
                role: Role::Target,
                endpoint: format!("{host}:{port}"),
                detail: "a redirect from a target that is not a cluster".into(),
            });
        };
        let endpoint = cluster.endpoint_of(host, port);
        if let Some(token) = self.nodes.find(&endpoint.addr) {
            return Ok(token);
        }
        let token = self.nodes.next_token();
        let conn = Conn::open(
            Role::Target,
            &endpoint,
            self.nodes.registry(),
            token,
            self.opts.timeout,
        )?;
        let role = CheckRole::new(
            conn.name(),
            self.opts.pipeline,
            self.opts.compare_ttl,
            &ServerInfo::default(),
        );
        Ok(self.nodes.add(CheckNode {
            link: Link::opening(conn, self.opts.timeout),
            role,
            queue: VecDeque::new(),
        }))
    }

    /// The comparison starts over in `epoch` (the source restarted).
    fn start_over(&mut self, epoch: u16) {
        self.work.epoch = epoch;
        self.drop_queued();
        self.work.judge.reset();
        self.source_done = false;
    }

    fn drop_queued(&mut self) {
        let mut released = 0;
        for node in self.nodes.iter_mut() {
            released += node.queue.drain(..).map(|(i, _)| i.cost()).sum::<usize>();
        }
        released += self
            .work
            .redirected
            .drain(..)
            .map(|(i, _)| i.cost())
            .sum::<usize>();
        self.work.released += released;
    }
}

impl Work {
    /// Reads a node's replies, sends what its window allows, writes.
    fn step(&mut self, node: &mut CheckNode, stopping: bool) -> Result<bool, Error> {
        let now = now_ms();
        while let Some(incoming) = node.link.conn.next_incoming()? {
            let Some(checked) = node.role.on_reply(incoming, now)? else {
                continue;
            };
            match checked {
                Checked::Seen(item, seen) => {
                    self.done(&item);
                    if item.page.epoch() == self.epoch {
                        Stats::add(&self.stats.compared, 1);
                        self.judge.take(item, seen, now)?;
                    }
                }
                Checked::Redirected(item, redirect) => self.redirected.push((item, redirect)),
                Checked::TooLarge(item, len) => {
                    self.done(&item);
                    Stats::add(&self.stats.compared, 1);
                    self.judge.tally().differs(
                        Difference::Different,
                        &item.key,
                        format!("the target's value is {len} bytes, more than rump reads"),
                    );
                }
            }
        }
        if !stopping {
            let mut owed = 0;
            while node.role.has_room() && node.link.conn.queued() < MAX_QUEUED_BYTES {
                let Some((item, asking)) = node.queue.pop_front() else {
                    break;
                };
                owed += node.role.send(item, asking, node.link.conn.out());
            }
            node.link.conn.owe(owed);
        }
        node.link.conn.flush()?;
        let can_send = !stopping && !node.queue.is_empty() && node.role.has_room();
        Ok(node.link.conn.may_read() || node.link.conn.may_write() || can_send)
    }

    /// The target answered for `item`: its page is acknowledged and its
    /// budget released.
    fn done(&mut self, item: &Item) {
        self.acks.push(item.page);
        self.released += item.cost();
    }
}
