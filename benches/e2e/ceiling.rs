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

use std::time::Instant;

use bytes::Bytes;
use resp::Frame;

use crate::procfs;
use crate::redis::{Batcher, Conn, Res};

/// Keys (and the `DUMP` payload bytes they stand for) moved in `secs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    pub(crate) secs: f64,
    pub(crate) keys: u64,
    pub(crate) bytes: u64,
    /// The largest single payload.
    pub(crate) largest: u64,
    /// CPU the measured server used meanwhile: close to `secs` when the
    /// server, not the harness, set the pace.
    pub(crate) server_cpu: f64,
}

/// The server process a ceiling is measured on.
#[derive(Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) pid: u32,
    pub(crate) tck: f64,
}

impl Probe {
    /// Runs `work`, returning its wall seconds and the server's CPU seconds.
    pub(crate) fn time(self, work: impl FnOnce() -> Res<()>) -> Res<(f64, f64)> {
        let before = procfs::ticks(&[self.pid]);
        let start = Instant::now();
        work()?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = procfs::ticks(&[self.pid]).saturating_sub(before) as f64 / self.tck;
        Ok((secs, cpu))
    }
}

impl Rate {
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

/// Source capacity, timed: `DUMP` + expiry read of every key, replies dropped.
pub(crate) fn source_capacity(
    conn: &mut Conn,
    probe: Probe,
    keys: &[Bytes],
    expiry: &[u8],
) -> Res<Rate> {
    let mut batches = Batcher::new(2000, 1 << 20);
    for key in keys {
        batches.command(&[b"DUMP", key]);
        batches.command(&[expiry, key]);
    }
    let batches = batches.finish();
    let mut bytes = 0u64;
    let mut found = 0u64;
    let mut largest = 0u64;
    let (secs, server_cpu) = probe.time(|| {
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
        })
    })?;
    Ok(Rate {
        secs,
        keys: found,
        bytes,
        largest,
        server_cpu,
    })
}

/// Target capacity, timed: `RESTORE key 0 payload REPLACE` of every dumped key
/// into `conn` after `FLUSHALL`; flushes again afterwards.
pub(crate) fn target_capacity(conn: &mut Conn, probe: Probe, dumped: Dumped) -> Res<Rate> {
    let Dumped {
        keys,
        payloads,
        bytes,
    } = dumped;
    let count = keys.len() as u64;
    let largest = payloads.iter().map(|p| p.len() as u64).max().unwrap_or(0);
    let mut batches = Batcher::new(2000, 8 << 20);
    for (key, payload) in keys.into_iter().zip(payloads) {
        let req = batches.req();
        req.start(5);
        req.arg(b"RESTORE");
        req.arg(&key);
        req.arg_int(0);
        req.arg_shared(payload);
        req.arg(b"REPLACE");
        batches.done();
    }
    let batches = batches.finish();
    conn.flushall()?;
    let (secs, server_cpu) = probe.time(|| {
        conn.pipeline(batches, |reply| match reply {
            Frame::Simple(_) => Ok(()),
            other => Err(format!("target capacity: RESTORE answered {other:?}")),
        })
    })?;
    let restored = conn.dbsize()?;
    if restored != count {
        return Err(format!(
            "target capacity: {restored} keys on the target after restoring {count}"
        ));
    }
    conn.flushall()?;
    Ok(Rate {
        secs,
        keys: count,
        bytes,
        largest,
        server_cpu,
    })
}
