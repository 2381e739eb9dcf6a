//! One end's servers, read in rounds: a connection to every node that the
//! reads need (one for a standalone server; for a cluster, each master, or
//! with `--read-from replica` a replica of each shard, plus any node a
//! redirect names), and for a cluster the slot map that sends each key to
//! its node.
//!
//! A round takes a list of requests (commands about one key, or for one
//! node) and returns every reply, in request order: the commands are
//! pipelined on every node at once, a redirected request (`MOVED`, `ASK`) is
//! sent again where the node says (after `ASKING` for an `ASK`), and the
//! round ends when every request is answered. It serves what the copy's
//! loops do not: re-reading the keys a verify found different, reading
//! values with type commands, and a dry run's questions. A lost connection
//! or a silent server ends the round with the error (these reads are short;
//! the copy's loops are the ones that ride out outages).
//!
//! Only the caller's commands are sent, after the handshake's; this file
//! writes nothing of its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use resp::Frame;

use crate::app::{open_all, source_nodes, Opened};
use crate::cluster::redirect::{parse_redirect, Redirect};
use crate::cluster::slot::{slot, SLOTS};
use crate::cluster::topology::Topology;
use crate::config::{Config, Endpoint, ServerEndpoint};
use crate::engine::poll_once;
use crate::engine::route::node_endpoint;
use crate::error::{Error, Role};
use crate::net::conn::{Conn, Startup};
use crate::net::ServerInfo;

/// Most commands in flight on one connection during a round.
const WINDOW: usize = 1024;
/// Redirects one request may follow before the cluster is called unstable.
const MAX_REDIRECTS: u8 = 8;
/// Longest sleep in a round, bounding how late a signal is seen.
const TICK: Duration = Duration::from_millis(100);

/// One command: its name and arguments.
pub type Command = Vec<Bytes>;

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// The node that serves this key.
    Key(Bytes),
    /// A node by its index in [`Side::nodes`].
    Node(usize),
}

/// Commands sent together to one node, answered together.
#[derive(Clone, Debug)]
pub struct Request {
    pub dest: Dest,
    pub commands: Vec<Command>,
}

impl Request {
    /// `commands` about `key`, to the node serving it.
    pub fn key(key: &Bytes, commands: Vec<Command>) -> Request {
        Request {
            dest: Dest::Key(key.clone()),
            commands,
        }
    }
}

/// A node and what the round has queued and sent on it.
#[derive(Debug)]
pub struct SideNode {
    pub conn: Conn,
    /// What its handshake said (default until it completes).
    pub info: ServerInfo,
    ready: bool,
    /// Requests to send: index, and whether to send `ASKING` first.
    queue: VecDeque<(usize, bool)>,
    in_flight: VecDeque<Flight>,
    /// Commands in flight (`ASKING`s included).
    commands: usize,
}

/// A request sent and not yet fully answered.
#[derive(Debug)]
struct Flight {
    request: usize,
    asking: bool,
    /// Replies still owed.
    left: usize,
    frames: Vec<Frame>,
}

/// One end's connections.
#[derive(Debug)]
pub struct Side {
    role: Role,
    seed: ServerEndpoint,
    poll: Poll,
    events: Events,
    nodes: Vec<SideNode>,
    /// Slot → index into `nodes`, for a cluster; `None` for a standalone
    /// server (every request to node 0).
    map: Option<Box<[Option<usize>]>>,
    timeout: Duration,
    signal: Arc<AtomicUsize>,
}

impl Side {
    /// Opens the `role` end of `config` (`None` for a dump file): the node
    /// named, and for a cluster the nodes a run reads (the source) or writes
    /// (the target's masters).
    pub fn open(
        role: Role,
        config: &Config,
        signal: &Arc<AtomicUsize>,
    ) -> Result<Option<Side>, Error> {
        let endpoint = match role {
            Role::Source => &config.source,
            Role::Target => &config.target,
        };
        let Endpoint::Server(server) = endpoint else {
            return Ok(None);
        };
        let seed = open_all(&[(role, server.clone())], config.timeout, signal)?
            .pop()
            .ok_or_else(|| Error::Setup(std::io::Error::other("no connection was opened")))?;
        let topology = seed.info.topology.clone();
        let nodes = match (&topology, role) {
            (None, _) => vec![seed],
            (Some(_), Role::Source) => source_nodes(config, seed, signal)?,
            (Some(t), Role::Target) => {
                let wanted: Vec<(Role, ServerEndpoint)> = t
                    .shards()
                    .iter()
                    .filter(|s| !s.slots.is_empty())
                    .map(|s| (role, node_endpoint(server, &s.master.host, s.master.port)))
                    .collect();
                open_all(&wanted, config.timeout, signal)?
            }
        };
        Side::new(
            role,
            server.clone(),
            nodes,
            topology.as_ref(),
            config.timeout,
            signal,
        )
        .map(Some)
    }

    /// A side over connections whose handshake is done; `topology` maps
    /// each slot to the node among `opened` that is the shard's master or
    /// one of its replicas.
    pub(crate) fn new(
        role: Role,
        seed: ServerEndpoint,
        opened: Vec<Opened>,
        topology: Option<&Topology>,
        timeout: Duration,
        signal: &Arc<AtomicUsize>,
    ) -> Result<Side, Error> {
        let poll = Poll::new().map_err(Error::Setup)?;
        let mut nodes = Vec::with_capacity(opened.len());
        for (i, mut o) in opened.into_iter().enumerate() {
            o.conn.register(poll.registry(), Token(i + 1))?;
            nodes.push(SideNode {
                conn: o.conn,
                info: o.info,
                ready: true,
                queue: VecDeque::new(),
                in_flight: VecDeque::new(),
                commands: 0,
            });
        }
        let map = topology.map(|t| {
            let mut map = vec![None; usize::from(SLOTS)].into_boxed_slice();
            for shard in t.shards() {
                let serving = std::iter::once(&shard.master).chain(&shard.replicas);
                let index = serving.into_iter().find_map(|n| {
                    let addr = node_endpoint(&seed, &n.host, n.port).addr;
                    nodes.iter().position(|o| o.conn.endpoint().addr == addr)
                });
                for &(first, last) in &shard.slots {
                    for s in first..=last {
                        map[usize::from(s)] = index;
                    }
                }
            }
            map
        });
        Ok(Side {
            role,
            seed,
            poll,
            events: Events::with_capacity(64),
            nodes,
            map,
            timeout,
            signal: Arc::clone(signal),
        })
    }

    /// Every node connected so far, in index order.
    pub fn nodes(&self) -> &[SideNode] {
        &self.nodes
    }

    /// True for a cluster end.
    pub fn is_cluster(&self) -> bool {
        self.map.is_some()
    }

    /// Sends every request and returns each one's replies, in order.
    pub fn round(&mut self, requests: &[Request]) -> Result<Vec<Vec<Frame>>, Error> {
        let mut results: Vec<Option<Vec<Frame>>> = vec![None; requests.len()];
        let mut redirects = vec![0u8; requests.len()];
        for (i, request) in requests.iter().enumerate() {
            let node = match &request.dest {
                Dest::Node(n) if *n < self.nodes.len() => *n,
                Dest::Node(n) => return Err(self.protocol(format!("no node {n} to ask"))),
                Dest::Key(key) => self.node_for(key)?,
            };
            self.nodes[node].queue.push_back((i, false));
        }
        let mut done = 0;
        while done < requests.len() {
            if self.signal.load(Ordering::SeqCst) != 0 {
                return Err(Error::Aborted("interrupted".into()));
            }
            let mut answered = Vec::new();
            let mut busy = false;
            for node in &mut self.nodes {
                busy |= drive(node, self.poll.registry(), requests, &mut answered)?;
            }
            for (request, frames) in answered {
                match redirect_in(&frames) {
                    Some(redirect) => {
                        redirects[request] += 1;
                        if redirects[request] > MAX_REDIRECTS {
                            return Err(self.protocol(format!(
                                "a request was redirected {MAX_REDIRECTS} times (last to {}): \
                                 is the cluster resharding?",
                                redirect.addr()
                            )));
                        }
                        let node = self.node_at(redirect.host(), redirect.port())?;
                        let ask = matches!(redirect, Redirect::Ask { .. });
                        self.nodes[node].queue.push_front((request, ask));
                    }
                    None => {
                        results[request] = Some(frames);
                        done += 1;
                    }
                }
                busy = true;
            }
            if done == requests.len() {
                break;
            }
            for node in &self.nodes {
                if node.ready {
                    node.conn.check_silence(self.timeout)?;
                }
            }
            if !busy {
                self.wait()?;
            }
        }
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Sends `commands` to node `node` and returns their replies.
    pub fn call(&mut self, node: usize, commands: Vec<Command>) -> Result<Vec<Frame>, Error> {
        let request = Request {
            dest: Dest::Node(node),
            commands,
        };
        Ok(self.round(&[request])?.pop().unwrap_or_default())
    }

    /// The node serving `key`.
    fn node_for(&self, key: &[u8]) -> Result<usize, Error> {
        match &self.map {
            None => Ok(0),
            Some(map) => map[usize::from(slot(key))].ok_or_else(|| {
                self.protocol(format!(
                    "no node serves slot {} in the topology read at start-up",
                    slot(key)
                ))
            }),
        }
    }

    /// The node at `host:port`, connected to if it is new.
    fn node_at(&mut self, host: &str, port: u16) -> Result<usize, Error> {
        let endpoint = node_endpoint(&self.seed, host, port);
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.conn.endpoint().addr == endpoint.addr)
        {
            return Ok(i);
        }
        let token = Token(self.nodes.len() + 1);
        let conn = Conn::open(
            self.role,
            &endpoint,
            self.poll.registry(),
            token,
            self.timeout,
        )?;
        self.nodes.push(SideNode {
            conn,
            info: ServerInfo::default(),
            ready: false,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            commands: 0,
        });
        Ok(self.nodes.len() - 1)
    }

    /// Sleeps until an event or the earliest deadline.
    fn wait(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        let timeout = self
            .nodes
            .iter()
            .filter_map(|n| n.conn.silence_deadline(self.timeout))
            .map(|at| at.saturating_duration_since(now))
            .fold(TICK, Duration::min);
        poll_once(&mut self.poll, &mut self.events, timeout)?;
        for event in self.events.iter() {
            if let Some(node) = self.nodes.get_mut(event.token().0.wrapping_sub(1)) {
                node.conn.on_event(event);
            }
        }
        Ok(())
    }

    fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            role: self.role,
            endpoint: self.seed.to_string(),
            detail,
        }
    }
}

/// One node's turn: finish its handshake, send what the window allows,
/// take every reply that arrived. Completed requests go to `answered`.
/// `Ok(true)` when there may be more to do at once.
fn drive(
    node: &mut SideNode,
    registry: &mio::Registry,
    requests: &[Request],
    answered: &mut Vec<(usize, Vec<Frame>)>,
) -> Result<bool, Error> {
    if !node.ready {
        match node.conn.advance(registry)? {
            Startup::Ready(info) => {
                node.info = *info;
                node.ready = true;
            }
            Startup::Pending | Startup::Idle => return Ok(false),
        }
    }
    let mut owed = 0;
    while node.commands < WINDOW {
        let Some((request, asking)) = node.queue.pop_front() else {
            break;
        };
        let commands = &requests[request].commands;
        for command in commands {
            if asking {
                node.conn.out().cmd().arg(b"ASKING").send();
            }
            let mut cmd = node.conn.out().cmd();
            for arg in command {
                cmd = cmd.arg(arg);
            }
            cmd.send();
        }
        let left = commands.len() * if asking { 2 } else { 1 };
        node.commands += left;
        owed += left;
        node.in_flight.push_back(Flight {
            request,
            asking,
            left,
            frames: Vec::with_capacity(left),
        });
    }
    node.conn.owe(owed);
    node.conn.flush()?;
    while let Some(frame) = node.conn.next_frame()? {
        let Some(flight) = node.in_flight.front_mut() else {
            return Err(Error::Protocol {
                role: node.conn.role(),
                endpoint: node.conn.name().to_string(),
                detail: "a reply arrived for no command".into(),
            });
        };
        flight.frames.push(frame);
        flight.left -= 1;
        node.commands -= 1;
        if flight.left == 0 {
            if let Some(flight) = node.in_flight.pop_front() {
                let frames = if flight.asking {
                    // Every other reply is an ASKING's +OK.
                    flight.frames.into_iter().skip(1).step_by(2).collect()
                } else {
                    flight.frames
                };
                answered.push((flight.request, frames));
            }
        }
    }
    Ok(node.conn.may_read()
        || node.conn.may_write()
        || !node.queue.is_empty() && node.commands < WINDOW)
}

/// The first redirect among a request's replies.
fn redirect_in(frames: &[Frame]) -> Option<Redirect> {
    frames.iter().find_map(|f| match f {
        Frame::Error(e) => parse_redirect(e),
        _ => None,
    })
}

/// Bytes of a command argument.
pub fn arg(text: &[u8]) -> Bytes {
    Bytes::copy_from_slice(text)
}
