//! Checks a migrated target against the source: equal `DBSIZE`, and a random
//! sample of keys equal value by value with their TTLs.
//!
//! A key is equal when both `DUMP` payloads are the same bytes (the common
//! case: same server version, same encoding) or, failing that, when its type and
//! contents read back equal (`GET`, `HGETALL`, `LRANGE`, `SMEMBERS`, `ZRANGE …
//! WITHSCORES`, `XRANGE`): a hash-table-encoded hash or set may serialise its
//! members in another order on another server, and that is not a difference.
//!
//! On a cluster, `DBSIZE` is the sum over its masters, the sample is drawn
//! from every source master in proportion to its keys, and each key is read
//! from the master serving it on either side.

use std::collections::HashSet;

use bytes::Bytes;
use resp::Frame;

use crate::redis::{Batcher, Conn, Res};
use crate::topology::Nodes;

/// Largest difference between source and target PTTL still called equal: the
/// tool may copy TTLs as relative times, which then include its latency.
pub(crate) const TTL_TOLERANCE_MS: i64 = 1500;

/// `Ok(summary)` when the target matches, else `Err(what differs)`.
pub(crate) fn verify(src: &mut Nodes, tgt: &mut Nodes, sample: usize) -> Res<String> {
    let src_sizes = src.dbsizes()?;
    let src_size: u64 = src_sizes.iter().sum();
    let tgt_size = tgt.dbsize()?;
    if src_size != tgt_size {
        return Err(format!(
            "DBSIZE {tgt_size} on the target, {src_size} on the source"
        ));
    }
    let mut keys = Vec::new();
    for (conn, size) in src.conns.iter_mut().zip(&src_sizes) {
        // Each node's share of the sample, rounded up: at least `sample` in all.
        let share = (sample as u64 * size).div_ceil(src_size.max(1));
        keys.extend(sample_keys(conn, share as usize)?);
    }
    let src_ttls = src.ints(b"PTTL", &keys)?;
    let tgt_ttls = tgt.ints(b"PTTL", &keys)?;
    let src_dumps = src.dumps(&keys)?;
    let tgt_dumps = tgt.dumps(&keys)?;

    let mut problems = Vec::new();
    let (mut by_dump, mut by_value, mut with_ttl) = (0, 0, 0);
    for (i, key) in keys.iter().enumerate() {
        let name = String::from_utf8_lossy(key);
        match (&src_dumps[i], &tgt_dumps[i]) {
            (None, _) => continue, // gone from the source since: nothing to compare
            (Some(_), None) => problems.push(format!("{name}: missing on the target")),
            (Some(a), Some(b)) if a == b => by_dump += 1,
            (Some(_), Some(_)) => match same_value(src.conn_for(key), tgt.conn_for(key), key) {
                Ok(()) => by_value += 1,
                Err(e) => problems.push(format!("{name}: {e}")),
            },
        }
        match (src_ttls[i], tgt_ttls[i]) {
            (-2, _) | (-1, -1) => {}
            (-1, t) => problems.push(format!(
                "{name}: PTTL {t} on the target, none on the source"
            )),
            (s, t) if t < 0 || (s - t).abs() > TTL_TOLERANCE_MS => {
                problems.push(format!("{name}: PTTL {s} on the source, {t} on the target"));
            }
            _ => with_ttl += 1,
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "DBSIZE {src_size} on both; {} sampled keys equal ({by_dump} by DUMP, {by_value} value by value), {with_ttl} TTLs within {TTL_TOLERANCE_MS} ms",
            keys.len()
        ))
    } else {
        let total = problems.len();
        problems.truncate(3);
        Err(format!(
            "{total} of {} sampled keys differ, e.g. {}",
            keys.len(),
            problems.join("; ")
        ))
    }
}

/// The outcome of a `rump --verify-only` run over a copy it just made:
/// every one of the `keys` verified, nothing different.
pub(crate) fn verify_only_result(stdout: &str, keys: u64) -> Res<String> {
    let field = |name: &str| crate::report::json_number(stdout, name).unwrap_or(-1.0) as i64;
    let verified = field("verified");
    let differing = field("missing") + field("different") + field("ttl_mismatch");
    if verified == keys as i64 && differing == 0 {
        Ok(format!("all {verified} keys verified"))
    } else {
        Err(format!(
            "verified {verified} of {keys} keys, {differing} differ: {}",
            stdout.trim()
        ))
    }
}

/// Up to `n` distinct keys by `RANDOMKEY` on the source.
fn sample_keys(src: &mut Conn, n: usize) -> Res<Vec<Bytes>> {
    let mut batches = Batcher::new(1000, 1 << 20);
    for _ in 0..n {
        batches.command(&[b"RANDOMKEY"]);
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    src.pipeline(batches.finish(), |reply| {
        if let Frame::Bulk(key) = reply {
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
        Ok(())
    })?;
    Ok(keys)
}

/// Type and contents of `key` read back from both servers, in a canonical order.
fn same_value(src: &mut Conn, tgt: &mut Conn, key: &[u8]) -> Res<()> {
    let a = contents(src, key)?;
    let b = contents(tgt, key)?;
    if a.0 != b.0 {
        return Err(format!("type {} on the source, {} on the target", a.0, b.0));
    }
    if a.1 != b.1 {
        return Err(format!("{} contents differ", a.0));
    }
    Ok(())
}

fn contents(conn: &mut Conn, key: &[u8]) -> Res<(String, Vec<Vec<Bytes>>)> {
    let kind = match conn.call_ok(&[b"TYPE", key])? {
        Frame::Simple(t) => String::from_utf8_lossy(&t).into_owned(),
        other => return Err(format!("TYPE answered {other:?}")),
    };
    let (reply, group, sort) = match kind.as_str() {
        "string" => (conn.call_ok(&[b"GET", key])?, 1, false),
        "hash" => (conn.call_ok(&[b"HGETALL", key])?, 2, true),
        "list" => (conn.call_ok(&[b"LRANGE", key, b"0", b"-1"])?, 1, false),
        "set" => (conn.call_ok(&[b"SMEMBERS", key])?, 1, true),
        "zset" => (
            conn.call_ok(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"])?,
            2,
            false,
        ),
        "stream" => (conn.call_ok(&[b"XRANGE", key, b"-", b"+"])?, 1, false),
        other => {
            return Err(format!(
                "DUMP payloads differ and type {other} is not compared"
            ))
        }
    };
    let mut flat = Vec::new();
    flatten(reply, &mut flat);
    let mut items: Vec<Vec<Bytes>> = flat.chunks(group).map(<[Bytes]>::to_vec).collect();
    if sort {
        items.sort();
    }
    Ok((kind, items))
}

fn flatten(frame: Frame, out: &mut Vec<Bytes>) {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => out.push(b),
        Frame::Integer(n) => out.push(Bytes::from(n.to_string())),
        Frame::Array(items) => items.into_iter().for_each(|f| flatten(f, out)),
        Frame::Null | Frame::NullArray | Frame::Error(_) => out.push(Bytes::new()),
    }
}
