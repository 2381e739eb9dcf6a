//! `--verify` and `--verify-only`: compare every key the source yields with
//! what the target holds.
//!
//! The comparison is a pass of the engine with the copy's target loop
//! swapped out: the source side is the copy's own (the SCAN role with
//! `--match`, `--type` and `--slots`, every master of a cluster, redirects,
//! reconnects, `--rate`; or a dump file's records), and the target side is
//! the [`CheckLoop`], which reads each key on the
//! target (`DUMP` and its expiry, pipelined) and hands both to the
//! [`Judge`](judge::Judge). Nothing is written on either end.
//!
//! - `payload` and `compare`: the first look at a key (equal bodies are
//!   equal values; absent; expiry within 1 s).
//! - `canonical`: the order-free form of a value and the [`Canonical`]
//!   interface for payloads that differ; `by_commands` implements it with
//!   type commands until payload decoding lands.
//! - `judge`: counting, batching contents, re-checking differences.
//! - `check` and `check_loop`: the target side of the pass.
//! - `side` and `ends`: connections for the reads the pass does not make
//!   (contents, re-checks; the dry run uses them too).
//! - `tally`: the counts and the keys shown.

pub mod by_commands;
pub mod by_payload;
pub mod canonical;
pub mod check;
pub mod check_loop;
pub mod compare;
pub mod ends;
pub mod judge;
pub mod payload;
pub mod side;
pub mod tally;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use mio::Poll;

use crate::cluster::topology::Topology;
use crate::config::{Config, Endpoint, ServerEndpoint};
use crate::engine::control::Control;
use crate::engine::ledger::Ledger;
use crate::engine::pipe::BatchReceiver;
use crate::error::Error;
use crate::net::conn::Conn;
use crate::net::ServerInfo;
use crate::progress::Stats;

pub use canonical::Canonical;
pub use check_loop::CheckLoop;
pub use tally::{Report, Tally};

/// The target of a verify, opened: its connections (handshake done) and,
/// for a cluster, the topology they came from.
#[derive(Debug)]
pub enum Target {
    Server(Box<(Conn, ServerInfo)>),
    Cluster {
        seed: ServerEndpoint,
        masters: Vec<(Conn, ServerInfo)>,
        topology: Box<Topology>,
    },
}

/// What a verify pass shares with the main thread.
#[derive(Debug)]
pub struct Verifier {
    config: Arc<Config>,
    signal: Arc<AtomicUsize>,
    /// The counts, read by the main thread for the summary.
    pub tally: Arc<Tally>,
}

impl Verifier {
    pub fn new(config: &Config, signal: &Arc<AtomicUsize>) -> Verifier {
        Verifier {
            config: Arc::new(config.clone()),
            signal: Arc::clone(signal),
            tally: Arc::new(Tally::default()),
        }
    }

    /// The loop that stands in for the copy's target loop: it takes the
    /// channel `rx` and runs on `poll` (whose waker the source uses).
    pub fn target_loop(
        &self,
        target: Target,
        poll: Poll,
        rx: BatchReceiver,
        stats: &Arc<Stats>,
        control: &Arc<Control>,
        ledger: &Arc<Ledger>,
    ) -> Result<CheckLoop, Error> {
        let config = &self.config;
        // A dump file does not change while it is read: nothing to re-check.
        let recheck = matches!(config.source, Endpoint::Server(_));
        let judge = judge::Judge::new(
            Arc::clone(&self.tally),
            Box::new(by_payload::ByPayload::default()),
            ends::Ends::new(Arc::clone(config), Arc::clone(&self.signal)),
            recheck,
            config.copy_ttl,
            Arc::clone(&self.signal),
        );
        let opts = check_loop::CheckOptions {
            pipeline: config.pipeline.unwrap_or(crate::config::DEFAULT_PIPELINE),
            compare_ttl: config.copy_ttl,
            timeout: config.timeout,
        };
        let (cluster, nodes, topology) = match target {
            Target::Server(node) => (None, vec![*node], None),
            Target::Cluster {
                seed,
                masters,
                topology,
            } => (Some(seed), masters, Some(topology)),
        };
        let mut check = CheckLoop::new(
            poll,
            rx,
            cluster,
            judge,
            opts,
            Arc::clone(stats),
            Arc::clone(control),
            Arc::clone(ledger),
        );
        for (mut conn, info) in nodes {
            conn.register(check.registry(), check.next_token())?;
            check.add(conn, info);
        }
        if let Some(topology) = topology {
            check.use_topology(&topology);
        }
        Ok(check)
    }
}
