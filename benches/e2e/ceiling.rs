//! The ceilings: what the source can serve and the target can absorb on this
//! machine, measured in the same run as the tools, with nothing else running.
//!
//! - source capacity: `DUMP key` + `PEXPIRETIME key` (or `PTTL` before Redis
//!   7.0) of every key, pipelined, replies decoded and dropped; the keys come
//!   from `SCAN` beforehand and the commands are encoded before the clock starts;
//! - target capacity: `RESTORE key 0 payload REPLACE` of every key into a
//!   flushed target, the payloads dumped and the commands encoded beforehand.
//!
//! Either way the harness only writes bytes and decodes replies while the clock
//! runs, so the rate is the server's, not the client's or the network's.
//!
//! A cluster's ceilings are its masters' capacities together: every source
//! master dumps its own keys and every target master restores the keys of
//! its own slots, all at once (a thread and a connection per master), and the
//! rate is all keys over the wall time of the slowest.

use std::time::Instant;

use bytes::Bytes;
use resp::Frame;

use crate::procfs;
use crate::redis::{Batcher, Conn, Res};
use crate::topology::Nodes;

/// Keys (and the `DUMP` payload bytes they stand for) moved in `secs`.
#[derive(Clone, Debug)]
pub(crate) struct Rate {
    pub(crate) secs: f64,
    pub(crate) keys: u64,
    pub(crate) bytes: u64,
    /// The largest single payload.
    pub(crate) largest: u64,
    /// CPU each measured server used meanwhile: close to `secs` when the
    /// server, not the harness, set the pace.
    pub(crate) server_cpu: Vec<f64>,
    /// CPU the latency proxies used meanwhile, in latency mode (set by the caller).
    pub(crate) proxy_cpu: Option<f64>,
}

/// The server processes a ceiling is measured on.
#[derive(Clone)]
pub(crate) struct Probe {
    pub(crate) pids: Vec<u32>,
    pub(crate) tck: f64,
}

impl Probe {
    /// Runs `work`, returning its wall seconds and each server's CPU seconds.
    pub(crate) fn time(&self, work: impl FnOnce() -> Res<()>) -> Res<(f64, Vec<f64>)> {
        let each = || {
            self.pids
                .iter()
                .map(|&p| procfs::ticks(&[p]))
                .collect::<Vec<_>>()
        };
        let before = each();
        let start = Instant::now();
        work()?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = each()
            .iter()
            .zip(before)
            .map(|(after, before)| after.saturating_sub(before) as f64 / self.tck)
            .collect();
        Ok((secs, cpu))
    }
}

impl Rate {
    /// CPU of all the measured servers together.
    pub(crate) fn server_cpu_total(&self) -> f64 {
        self.server_cpu.iter().sum()
    }

    pub(crate) fn keys_per_sec(&self) -> f64 {
        self.keys as f64 / self.secs
    }

    pub(crate) fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs / (1024.0 * 1024.0)
    }
}

/// Every key with its `DUMP` payload, as the source holds it now.
pub(crate) struct Dumped {
    pub(crate) keys: Vec<Bytes>,
    pub(crate) payloads: Vec<Bytes>,
    pub(crate) bytes: u64,
}

/// `PEXPIRETIME` where the source has it (Redis/Valkey 7.0+), else `PTTL`:
/// the expiry read rump itself uses.
pub(crate) fn expiry_command(conn: &mut Conn) -> Res<&'static [u8]> {
    Ok(
        match conn.call(&[b"PEXPIRETIME", b"rump-e2e:no-such-key"])? {
            Frame::Integer(_) => b"PEXPIRETIME",
            _ => b"PTTL",
        },
    )
}

/// Dumps every key of `keys` (untimed); keys that are gone are dropped.
pub(crate) fn dump_all(conn: &mut Conn, keys: Vec<Bytes>) -> Res<Dumped> {
    let replies = conn.dumps(&keys)?;
    let mut dumped = Dumped {
        keys: Vec::with_capacity(keys.len()),
        payloads: Vec::with_capacity(keys.len()),
        bytes: 0,
    };
    for (key, payload) in keys.into_iter().zip(replies) {
        if let Some(payload) = payload {
            dumped.bytes += payload.len() as u64;
            dumped.keys.push(key);
            dumped.payloads.push(payload);
        }
    }
    Ok(dumped)
}

/// Source capacity, timed: `DUMP` + expiry read of every key on the node
/// that holds it (`keys[i]` on node `i`), all nodes at once, replies dropped.
pub(crate) fn source_capacity(
    nodes: &mut Nodes,
    probe: &Probe,
    keys: &[&[Bytes]],
    expiry: &[u8],
) -> Res<Rate> {
    let batches: Vec<_> = keys
        .iter()
        .map(|keys| {
            let mut batches = Batcher::new(2000, 1 << 20);
            for key in keys.iter() {
                batches.command(&[b"DUMP", key]);
                batches.command(&[expiry, key]);
            }
            batches.finish()
        })
        .collect();
    let mut totals = Vec::new();
    let (secs, server_cpu) = probe.time(|| {
        totals = nodes.each(batches, |conn, batches| {
            let (mut bytes, mut found, mut largest) = (0u64, 0u64, 0u64);
            conn.pipeline(batches, |reply| {
                match reply {
                    Frame::Bulk(payload) => {
                        bytes += payload.len() as u64;
                        largest = largest.max(payload.len() as u64);
                        found += 1;
                    }
                    Frame::Integer(_) | Frame::Null => {}
                    other => return Err(format!("source capacity: unexpected reply {other:?}")),
                }
                Ok(())
            })?;
            Ok((bytes, found, largest))
        })?;
        Ok(())
    })?;
    Ok(Rate {
        secs,
        keys: totals.iter().map(|t| t.1).sum(),
        bytes: totals.iter().map(|t| t.0).sum(),
        largest: totals.iter().map(|t| t.2).max().unwrap_or(0),
        server_cpu,
        proxy_cpu: None,
    })
}

/// Target capacity, timed: `RESTORE key 0 payload REPLACE` of every dumped
/// key (from every source node) into the target node that serves it, after
/// `FLUSHALL`, all nodes at once; flushes again afterwards. The connections
/// in `nodes` decide the mode (plain or TLS).
pub(crate) fn target_capacity(nodes: &mut Nodes, probe: &Probe, dumped: &[Dumped]) -> Res<Rate> {
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut largest = 0u64;
    let mut router = nodes.router(2000, 8 << 20);
    for d in dumped {
        count += d.keys.len() as u64;
        bytes += d.bytes;
        for (key, payload) in d.keys.iter().zip(&d.payloads) {
            largest = largest.max(payload.len() as u64);
            let req = router.req(key);
            req.start(5);
            req.arg(b"RESTORE");
            req.arg(key);
            req.arg_int(0);
            // A reference count, not a copy: each mode's pass shares them.
            req.arg_shared(payload.clone());
            req.arg(b"REPLACE");
            router.done();
        }
    }
    let batches = router.finish();
    nodes.flushall()?;
    let (secs, server_cpu) = probe.time(|| {
        nodes
            .each(batches, |conn, batches| {
                conn.pipeline(batches, |reply| match reply {
                    Frame::Simple(_) => Ok(()),
                    other => Err(format!("target capacity: RESTORE answered {other:?}")),
                })
            })
            .map(drop)
    })?;
    let restored = nodes.dbsize()?;
    if restored != count {
        return Err(format!(
            "target capacity: {restored} keys on the target after restoring {count}"
        ));
    }
    nodes.flushall()?;
    Ok(Rate {
        secs,
        keys: count,
        bytes,
        largest,
        server_cpu,
        proxy_cpu: None,
    })
}
