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

use mio::{Events, Poll, Token};

use crate::engine::clock::{backoff, now_ms};
use crate::engine::control::Control;
use crate::engine::item::Item;
use crate::engine::ledger::{Acks, Ledger};
use crate::engine::link::{Link, LinkEvent};
use crate::engine::pipe::{BatchReceiver, RecvError};
use crate::engine::poll_once;
use crate::engine::restore::{Outcome, RestoreRole};
use crate::engine::slab::{Slab, WAKER};
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

/// A reply that said "not now", and since when replies have said so.
#[derive(Debug)]
struct Retry {
    since: Instant,
    at: Instant,
    attempts: u32,
}

/// The target side of a migration into a server.
#[derive(Debug)]
pub struct TargetLoop {
    poll: Poll,
    nodes: Slab<TargetNode>,
    rx: BatchReceiver,
    /// Items received (or given back) and not yet sent.
    queue: VecDeque<Item>,
    source_done: bool,
    /// The source stopped before the end (it failed or was stopped).
    abandoned: bool,
    epoch: u16,
    acks: Acks,
    /// Budget to give back to the channel at the end of this turn.
    released: usize,
    retry: Option<Retry>,
    timeout: Duration,
    stats: Arc<Stats>,
    control: Arc<Control>,
    ledger: Arc<Ledger>,
}

impl TargetLoop {
    /// A loop over `poll`, which must own the waker the source uses to wake
    /// this loop (token [`WAKER`]).
    pub fn new(
        poll: Poll,
        rx: BatchReceiver,
        timeout: Duration,
        stats: Arc<Stats>,
        control: Arc<Control>,
        ledger: Arc<Ledger>,
    ) -> TargetLoop {
        let epoch = control.epoch();
        TargetLoop {
            poll,
            nodes: Slab::default(),
            rx,
            queue: VecDeque::new(),
            source_done: false,
            abandoned: false,
            epoch,
            acks: Acks::default(),
            released: 0,
            retry: None,
            timeout,
            stats,
            control,
            ledger,
        }
    }

    /// The token the next node will get.
    pub fn next_token(&self) -> Token {
        self.nodes.vacant_token()
    }

    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    pub fn add(&mut self, node: TargetNode) -> Token {
        self.nodes.insert(node)
    }

    /// Runs until the source is done and every write is acknowledged, or a
    /// stop (then in-flight writes get five seconds to finish).
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(64);
        let mut stopped_at: Option<Instant> = None;
        loop {
            if stopped_at.is_none() && self.control.stopped() {
                stopped_at = Some(Instant::now());
                // Items received but not yet sent are dropped.
                self.drop_queue();
            }
            if self.control.epoch() != self.epoch {
                self.start_over(self.control.epoch());
            }
            if stopped_at.is_none() {
                self.receive();
            }
            let mut busy = false;
            for token in self.nodes.tokens() {
                busy |= self.drive(token, stopped_at.is_some())?;
            }
            self.acks.flush(&self.ledger);
            if self.released > 0 {
                self.rx.release(std::mem::take(&mut self.released));
            }

            let in_flight: usize = self.nodes.iter().map(|n| n.restore.in_flight()).sum();
            let idle = in_flight == 0 && self.queue.is_empty();
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
            let timeout = if busy {
                Duration::ZERO
            } else {
                self.wait_time()
            };
            poll_once(&mut self.poll, &mut events, timeout)?;
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(event.token()) {
                    node.link.conn.on_event(event);
                }
            }
        }
    }

    /// Takes batches from the channel while the queue is short.
    fn receive(&mut self) {
        while !self.source_done && self.queue.len() < QUEUE_AHEAD {
            match self.rx.try_recv(self.epoch) {
                Ok(batch) => {
                    for item in batch.items {
                        if item.page.epoch() == self.epoch {
                            self.queue.push_back(item);
                        } else {
                            self.released += item.cost();
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
        let registry = self.poll.registry();
        let Some(node) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        match node.link.tick(registry, &self.stats)? {
            LinkEvent::Steady => {}
            LinkEvent::Reconnected => {
                let info = node.link.info.clone();
                node.restore.update_server(&info);
            }
            LinkEvent::Restarted(info) => {
                node.restore.update_server(&info);
                self.stats.notice(format!(
                    "target {}: the server restarted (run_id changed) and may have lost what it \
                     had acknowledged, so the copy starts over",
                    node.link.conn.name()
                ));
                let epoch = self.control.start_over(&self.stats);
                self.start_over(epoch);
                return Ok(true);
            }
        }
        let Some(node) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        if node.link.is_down() {
            return Ok(false);
        }
        let result = self.step(token, stopping);
        let registry = self.poll.registry();
        let node = self.nodes.get_mut(token).expect("the node was just driven");
        let lost = match result {
            Ok(busy) => {
                node.link.check_silence(registry, &self.stats)?;
                if !node.link.is_down() {
                    return Ok(busy);
                }
                true
            }
            Err(e) => {
                node.link.lose(e, registry, &self.stats)?;
                true
            }
        };
        if lost {
            // Sent and not acknowledged: to be sent again, first, in order.
            let back = node.restore.take_in_flight();
            for item in back.into_iter().rev() {
                self.queue.push_front(item);
            }
        }
        Ok(false)
    }

    /// Reads replies, sends what the windows allow, writes.
    fn step(&mut self, token: Token, stopping: bool) -> Result<bool, Error> {
        let Some(node) = self.nodes.get_mut(token) else {
            return Ok(false);
        };
        while let Some(frame) = node.link.conn.next_frame()? {
            let (item, outcome) = node.restore.on_reply(frame)?;
            if item.page.epoch() != self.epoch {
                // Sent before the copy started over; the new pass sends it again.
                self.released += item.cost();
                continue;
            }
            match outcome {
                Outcome::Retry => {
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
            self.acks.push(item.page);
            self.released += item.cost();
        }
        let paused = self.retry.as_ref().is_some_and(|r| Instant::now() < r.at);
        if !stopping && !paused {
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
                        self.acks.push(expired.page);
                        self.released += expired.cost();
                    }
                }
            }
            node.link.conn.owe(owed);
        }
        node.link.conn.flush()?;
        let can_send = !stopping
            && !paused
            && !self.queue.is_empty()
            && node.restore.has_room()
            && node.link.conn.queued() < MAX_QUEUED_BYTES;
        Ok(node.link.conn.may_read() || node.link.conn.may_write() || can_send)
    }

    /// The copy starts over in `epoch`: everything of the earlier pass,
    /// queued or in flight, is dropped.
    fn start_over(&mut self, epoch: u16) {
        self.epoch = epoch;
        self.source_done = false;
        self.retry = None;
        // RESTOREs still in flight are answered as usual, but count for
        // nothing (see `step`).
        self.drop_queue();
    }

    fn drop_queue(&mut self) {
        for item in self.queue.drain(..) {
            self.released += item.cost();
        }
    }

    /// How long to sleep: until the next link deadline or retry, at most
    /// [`IDLE_POLL`].
    fn wait_time(&self) -> Duration {
        let now = Instant::now();
        let mut wait = IDLE_POLL;
        for node in self.nodes.iter() {
            if let Some(at) = node.link.deadline() {
                wait = wait.min(at.saturating_duration_since(now));
            }
        }
        if let Some(retry) = &self.retry {
            wait = wait.min(retry.at.saturating_duration_since(now));
        }
        wait
    }
}
