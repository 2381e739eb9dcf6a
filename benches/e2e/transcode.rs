//! Across versions (issue 11): the payloads a target older than its source
//! refuses, rewritten as rump rewrites them (`rdb::transcode`: the footer
//! alone where the target has the type, a re-encoding where it does not).
//!
//! Used twice, both untimed as far as the tools go: the target ceiling
//! restores the rewritten payloads (what rump sends, so the ceiling is the
//! target's), and the rewriting itself is timed per type byte, in-process
//! on one thread, for the transcoding table: MiB of source payload per
//! second, the figure rump's target thread pays per rewritten key.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

use crate::ceiling::Dumped;
use crate::redis::{Conn, Res};

/// Rewriting every payload of one type byte.
#[derive(Clone, Debug)]
pub(crate) struct TypeRate {
    pub(crate) type_byte: u8,
    pub(crate) payloads: u64,
    /// Source payload bytes in.
    pub(crate) bytes: u64,
    /// Rewritten payload bytes out.
    pub(crate) bytes_out: u64,
    /// How many only had their footer rewritten (the rest were re-encoded).
    pub(crate) footers: u64,
    pub(crate) secs: f64,
}

impl TypeRate {
    pub(crate) fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.secs
    }

    /// "hash (16, listpack)".
    pub(crate) fn name(&self) -> String {
        let (kind, encoding) = match self.type_byte {
            0 => ("string", "raw/int/LZF"),
            1 => ("list", "linked list"),
            10 => ("list", "ziplist"),
            14 => ("list", "quicklist"),
            18 => ("list", "quicklist 2"),
            2 => ("set", "hashtable"),
            11 => ("set", "intset"),
            20 => ("set", "listpack"),
            3 | 5 => ("zset", "skiplist"),
            12 => ("zset", "ziplist"),
            17 => ("zset", "listpack"),
            4 => ("hash", "hashtable"),
            9 => ("hash", "zipmap"),
            13 => ("hash", "ziplist"),
            16 => ("hash", "listpack"),
            22 | 24 | 25 => ("hash", "with field TTLs"),
            15 => ("stream", "listpacks 1"),
            19 => ("stream", "listpacks 2"),
            21 => ("stream", "listpacks 3"),
            _ => ("other", "?"),
        };
        format!("{kind} ({}, {encoding})", self.type_byte)
    }
}

/// The newest payload version the server behind `conn` reads, by rump's
/// own table (`INFO server`); `None` for a version rump does not know.
pub(crate) fn rdb_version(conn: &mut Conn) -> Res<Option<u16>> {
    let info = conn.call_ok(&[b"INFO", b"server"])?;
    let text = info
        .as_bulk()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    Ok(rump::net::info::parse_info(&text).rdb_version())
}

fn refused(payload: &[u8], target: u16) -> bool {
    rdb::payload_version(payload).is_some_and(|v| !rdb::version_accepted(target, v))
}

/// `None` when `target` reads every payload as it is. Otherwise every
/// payload as rump would send it to `target`, and the time the rewriting
/// took per type byte. A payload rump could not rewrite is an error.
pub(crate) fn for_target(
    dumped: &[Dumped],
    target: u16,
) -> Res<Option<(Vec<Dumped>, Vec<TypeRate>)>> {
    let all = || dumped.iter().flat_map(|d| d.payloads.iter());
    if !all().any(|p| refused(p, target)) {
        return Ok(None);
    }
    // Every refused payload, by type byte: (node, index) of each.
    let mut by_type: BTreeMap<u8, Vec<(usize, usize)>> = BTreeMap::new();
    for (node, d) in dumped.iter().enumerate() {
        for (i, payload) in d.payloads.iter().enumerate() {
            if refused(payload, target) {
                by_type.entry(payload[0]).or_default().push((node, i));
            }
        }
    }
    let mut out: Vec<Dumped> = dumped
        .iter()
        .map(|d| Dumped {
            keys: d.keys.clone(),
            payloads: d.payloads.clone(),
            bytes: d.bytes,
        })
        .collect();
    let options = rdb::EncodeOptions::default();
    let mut rates = Vec::new();
    for (type_byte, places) in by_type {
        let mut rate = TypeRate {
            type_byte,
            payloads: places.len() as u64,
            bytes: 0,
            bytes_out: 0,
            footers: 0,
            secs: 0.0,
        };
        let started = Instant::now();
        for &(node, i) in &places {
            let payload = &dumped[node].payloads[i];
            rate.bytes += payload.len() as u64;
            let rewritten = match rdb::transcode(payload, target, &options) {
                Ok(rdb::Transcoded::Unchanged) => payload.clone(),
                Ok(rdb::Transcoded::Footer(p)) => {
                    rate.footers += 1;
                    Bytes::from(p)
                }
                Ok(rdb::Transcoded::Reencoded(p)) => Bytes::from(p),
                Err(e) => {
                    return Err(format!(
                        "rdb::transcode of {} for RDB {target}: {e}",
                        String::from_utf8_lossy(&dumped[node].keys[i])
                    ))
                }
            };
            rate.bytes_out += rewritten.len() as u64;
            out[node].payloads[i] = rewritten;
        }
        rate.secs = started.elapsed().as_secs_f64();
        rates.push(rate);
    }
    Ok(Some((out, rates)))
}
