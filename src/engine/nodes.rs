//! What both loops share: a mio poll, the server connections it watches
//! (kept in a slab by token), and the sleep between turns, which ends at the
//! first event, the earliest deadline of any connection (a reply owed, a
//! reconnect due), or the loop's own limit.

use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};

use crate::config::ServerAddr;
use crate::engine::link::Link;
use crate::engine::poll_once;
use crate::engine::slab::{Slab, WAKER};
use crate::error::Error;

/// A loop's per-connection state, which always includes its link.
pub trait HasLink {
    fn link(&self) -> &Link;
    fn link_mut(&mut self) -> &mut Link;
}

/// A poll and the nodes registered with it.
#[derive(Debug)]
pub struct Nodes<N> {
    poll: Poll,
    events: Events,
    slab: Slab<N>,
}

impl<N: HasLink> Nodes<N> {
    /// Nodes over `poll`, whose waker (if any) uses token [`WAKER`].
    pub fn new(poll: Poll) -> Nodes<N> {
        Nodes {
            poll,
            events: Events::with_capacity(64),
            slab: Slab::default(),
        }
    }

    /// The token the next node will get: its connection must be registered
    /// under it.
    pub fn next_token(&self) -> Token {
        self.slab.vacant_token()
    }

    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Adds a node whose connection is registered under
    /// [`Nodes::next_token`].
    pub fn add(&mut self, node: N) -> Token {
        self.slab.insert(node)
    }

    /// Drops a node (its connection must be closed first).
    pub fn remove(&mut self, token: Token) -> Option<N> {
        self.slab.remove(token)
    }

    pub fn tokens(&self) -> Vec<Token> {
        self.slab.tokens()
    }

    /// A node and the registry together, for a node that must close or
    /// reopen its connection.
    pub fn get_mut(&mut self, token: Token) -> Option<(&mut N, &Registry)> {
        let registry = self.poll.registry();
        self.slab.get_mut(token).map(|node| (node, registry))
    }

    /// The node whose connection reaches `addr`.
    pub fn find(&self, addr: &ServerAddr) -> Option<Token> {
        self.slab.tokens().into_iter().find(|&t| {
            self.slab
                .get(t)
                .is_some_and(|n| n.link().conn.endpoint().addr == *addr)
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &N> {
        self.slab.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut N> {
        self.slab.iter_mut()
    }

    /// Waits for readiness (not at all when `busy`), at most `cap` or until
    /// the earliest link deadline, and notes what each event says on its
    /// connection. Waker events only end the wait.
    pub fn wait(&mut self, busy: bool, cap: Duration) -> Result<(), Error> {
        let timeout = if busy {
            Duration::ZERO
        } else {
            let now = Instant::now();
            self.slab
                .iter()
                .filter_map(|n| n.link().deadline())
                .map(|at| at.saturating_duration_since(now))
                .fold(cap, Duration::min)
        };
        poll_once(&mut self.poll, &mut self.events, timeout)?;
        for event in self.events.iter() {
            if event.token() == WAKER {
                continue;
            }
            if let Some(node) = self.slab.get_mut(event.token()) {
                node.link_mut().conn.on_event(event);
            }
        }
        Ok(())
    }
}
