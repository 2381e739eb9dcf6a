//! The target loop: owns every target connection (a slab keyed by mio
//! token), takes batches from the channel, and drives each connection's
//! restore role and link.
//!
//! Nothing is forgotten before it is acknowledged: an item stays in this
//! loop (queued, or in flight in a role) until the target answers for it,
//! and only then is its share of the channel's byte budget released and its
//! page acknowledged in the ledger. A lost connection puts its in-flight
//! items back at the front of the queue; a reply that means "not now"
//! (LOADING) puts its item back after a pause. A target that restarted may
//! have lost what it acknowledged, so the copy starts over
//! ([`Control::start_over`]) and everything of the earlier pass is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Token};

use crate::engine::clock::{backoff, now_ms};
use crate::engine::control::Control;
use crate::engine::item::Item;
use crate::engine::ledger::{Acks, Ledger};
use crate::engine::link::{Link, LinkEvent};
use crate::engine::nodes::{HasLink, Nodes};
use crate::engine::pipe::{BatchReceiver, RecvError};
use crate::engine::restore::{Outcome, RestoreRole};
use crate::error::{quote_key, Error, Role};
use crate::progress::Stats;

/// Most bytes queued for one socket at once; with the pipeline window this
/// bounds what the target side holds, whatever the value sizes.
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// Items taken from the channel ahead of what is in flight.
const QUEUE_AHEAD: usize = 1024;
/// After a stop, how long in-flight writes get to be acknowledged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(100);

/// One target connection and its restores.
#[derive(Debug)]
pub struct TargetNode {
    pub link: Link,
    pub restore: RestoreRole,
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

/// The items this loop holds and its accounting for them, apart from the
/// connections so that a node and the work can be borrowed together.
#[derive(Debug)]
struct Work {
    /// Items received (or given back) and not yet sent.
    queue: VecDeque<Item>,
    /// The copy pass; items of an earlier one count for nothing.
    epoch: u16,
    acks: Acks,
    /// Budget to give back to the channel at the end of this turn.
    released: usize,
    retry: Option<Retry>,
    timeout: Duration,
    stats: Arc<Stats>,
}

/// The target side of a migration into a server.
#[derive(Debug)]
pub struct TargetLoop {
    nodes: Nodes<TargetNode>,
    rx: BatchReceiver,
    work: Work,
    source_done: bool,
    /// The source stopped before the end (it failed or was stopped).
    abandoned: bool,
    control: Arc<Control>,
    ledger: Arc<Ledger>,
}

impl TargetLoop {
    /// A loop over `poll`, which must own the waker the source uses to wake
    /// this loop.
    pub fn new(
        poll: Poll,
        rx: BatchReceiver,
        timeout: Duration,
        stats: Arc<Stats>,
        control: Arc<Control>,
        ledger: Arc<Ledger>,
    ) -> TargetLoop {
        let work = Work {
            queue: VecDeque::new(),
            epoch: control.epoch(),
            acks: Acks::default(),
            released: 0,
            retry: None,
            timeout,
            stats,
        };
        TargetLoop {
            nodes: Nodes::new(poll),
            rx,
            work,
            source_done: false,
            abandoned: false,
            control,
            ledger,
        }
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

    /// Runs until the source is done and every write is acknowledged, or a
    /// stop (then in-flight writes get five seconds to finish).
    pub fn run(mut self) -> Result<(), Error> {
        let mut stopped_at: Option<Instant> = None;
        loop {
            if stopped_at.is_none() && self.control.stopped() {
                stopped_at = Some(Instant::now());
                // Items received but not yet sent are dropped.
                self.work.drop_queue();
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
            self.work.acks.flush(&self.ledger);
            if self.work.released > 0 {
                self.rx.release(std::mem::take(&mut self.work.released));
            }

            let in_flight: usize = self.nodes.iter().map(|n| n.restore.in_flight()).sum();
            let idle = in_flight == 0 && self.work.queue.is_empty();
            if idle && stopped_at.is_some() {
                return Ok(());
            }
            if idle && self.source_done {
                for node in self.nodes.iter() {
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

    /// Takes batches from the channel while the queue is short.
    fn receive(&mut self) {
        let work = &mut self.work;
        while !self.source_done && work.queue.len() < QUEUE_AHEAD {
            match self.rx.try_recv(work.epoch) {
                Ok(batch) => {
                    for item in batch.items {
                        if item.page.epoch() == work.epoch {
                            work.queue.push_back(item);
                        } else {
                            work.released += item.cost();
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
        if !node.link.is_down() {
            return Ok(busy);
        }
        // Sent and not acknowledged: to be sent again, first, in order.
        let back = node.restore.take_in_flight();
        for item in back.into_iter().rev() {
            self.work.queue.push_front(item);
        }
        Ok(false)
    }

    /// The copy starts over in `epoch`: everything of the earlier pass that
    /// is queued is dropped. RESTOREs still in flight are answered as usual,
    /// but count for nothing (see [`Work::step`]).
    fn start_over(&mut self, epoch: u16) {
        self.work.epoch = epoch;
        self.work.retry = None;
        self.work.drop_queue();
        self.source_done = false;
    }
}

impl Work {
    /// Reads a node's replies, sends what its windows allow, writes.
    fn step(&mut self, node: &mut TargetNode, stopping: bool) -> Result<bool, Error> {
        while let Some(frame) = node.link.conn.next_frame()? {
            let (item, outcome) = node.restore.on_reply(frame)?;
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
                Outcome::Copied => {
                    self.retry = None;
                    Stats::add(&self.stats.copied, 1);
                    Stats::add(&self.stats.bytes, item.payload.len() as u64);
                }
                Outcome::Skipped => Stats::add(&self.stats.skipped, 1),
                Outcome::Failed(message) => self.stats.fail(message),
            }
            self.done(&item);
        }
        let paused = self.retry.as_ref().is_some_and(|r| Instant::now() < r.at);
        let sending = !stopping && !paused;
        if sending {
            let now = now_ms();
            let mut owed = 0;
            while node.restore.has_room() && node.link.conn.queued() < MAX_QUEUED_BYTES {
                let Some(item) = self.queue.pop_front() else {
                    break;
                };
                match node.restore.send(item, node.link.conn.out(), now) {
                    Ok(()) => owed += 1,
                    Err(expired) => {
                        Stats::add(&self.stats.vanished, 1);
                        self.done(&expired);
                    }
                }
            }
            node.link.conn.owe(owed);
        }
        node.link.conn.flush()?;
        // More to send at once only while the socket takes it: a full socket
        // (a server that stopped reading) means waiting for an event.
        let can_send = sending
            && !self.queue.is_empty()
            && node.restore.has_room()
            && node.link.conn.queued() < MAX_QUEUED_BYTES;
        Ok(node.link.conn.may_read() || node.link.conn.may_write() || can_send)
    }

    /// A reply said "not now": the item goes back first in line, and sending
    /// pauses with backoff, for up to the timeout.
    fn retry_later(&mut self, node: &TargetNode, item: Item) -> Result<(), Error> {
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
        self.queue.push_front(item);
        Ok(())
    }

    /// The target answered for `item`: its page is acknowledged and its
    /// budget released.
    fn done(&mut self, item: &Item) {
        self.acks.push(item.page);
        self.released += item.cost();
    }

    fn drop_queue(&mut self) {
        for item in self.queue.drain(..) {
            self.released += item.cost();
        }
    }
}
