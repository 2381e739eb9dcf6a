//! What the data asks of the target: whether its payloads load there as
//! they are (versions), whether it fits (free memory against the source's
//! data), how many keys there are, and how long the copy should take,
//! from a short timed sample of reads on the source.

use std::time::{Duration, Instant};

use bytes::Bytes;
use resp::Frame;

use crate::config::Config;
use crate::dryrun::reach::{End, Server};
use crate::dryrun::report::Checks;
use crate::net::handshake::text;
use crate::progress::{group, human_bytes as human};
use crate::verify::side::{arg, Command, Request, Side};

/// Keys the timed sample reads at most.
const SAMPLE_KEYS: usize = 2000;
/// How long the sample may take.
const SAMPLE_TIME: Duration = Duration::from_secs(1);

/// A source sample: keys found and the time to read them.
#[derive(Debug, Default)]
pub struct Sample {
    pub keys: Vec<Bytes>,
    /// Payload bytes of the keys read.
    pub bytes: u64,
    /// Keys read with DUMP and their expiry.
    pub read: usize,
    pub elapsed: Duration,
    /// The newest RDB version among the payloads read.
    pub rdb: Option<u16>,
}

/// Finds keys as the run would (SCAN with its MATCH and TYPE) on the first
/// node of `server` and reads them as it would (DUMP plus expiry), timed.
pub fn sample(server: &mut Server, config: &Config) -> Result<Sample, String> {
    let Some(side) = server.nodes.first_mut() else {
        return Ok(Sample::default());
    };
    let started = Instant::now();
    let mut cursor = arg(b"0");
    let mut keys = Vec::new();
    loop {
        let mut scan: Command = vec![arg(b"SCAN"), cursor.clone(), arg(b"COUNT"), arg(b"1000")];
        if let Some(pattern) = &config.match_pattern {
            scan.extend([arg(b"MATCH"), arg(pattern)]);
        }
        if let Some(kind) = &config.key_type {
            scan.extend([arg(b"TYPE"), arg(kind.as_bytes())]);
        }
        let reply = side.call(0, vec![scan]).map_err(|e| e.to_string())?;
        let (next, page) = scan_reply(reply.into_iter().next())?;
        keys.extend(page.into_iter().filter(|k| {
            config
                .slots
                .as_ref()
                .map_or(true, |set| set.contains(crate::cluster::slot::slot(k)))
        }));
        cursor = next;
        if &cursor[..] == b"0" || keys.len() >= SAMPLE_KEYS || started.elapsed() > SAMPLE_TIME {
            break;
        }
    }
    keys.truncate(SAMPLE_KEYS);
    let expiry = if side
        .nodes()
        .first()
        .is_some_and(|n| n.info.has_pexpiretime())
    {
        arg(b"PEXPIRETIME")
    } else {
        arg(b"PTTL")
    };
    let requests: Vec<Request> = keys
        .iter()
        .map(|k| {
            Request::key(
                k,
                vec![
                    vec![arg(b"DUMP"), k.clone()],
                    vec![expiry.clone(), k.clone()],
                ],
            )
        })
        .collect();
    let replies = side.round(&requests).map_err(|e| e.to_string())?;
    let mut sample = Sample {
        read: keys.len(),
        keys,
        ..Sample::default()
    };
    for frames in replies {
        if let Some(Frame::Bulk(payload)) = frames.first() {
            sample.bytes += payload.len() as u64;
            sample.rdb = sample.rdb.max(crate::dump::rdb_version_of(payload));
        }
    }
    sample.elapsed = started.elapsed();
    Ok(sample)
}

fn scan_reply(frame: Option<Frame>) -> Result<(Bytes, Vec<Bytes>), String> {
    let parts = match frame {
        Some(Frame::Array(parts)) => parts,
        Some(Frame::Error(e)) => return Err(format!("SCAN failed: {}", text(&e))),
        other => return Err(format!("unexpected reply to SCAN: {other:?}")),
    };
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next()) {
        (Some(Frame::Bulk(cursor)), Some(Frame::Array(keys))) => Ok((
            cursor,
            keys.into_iter()
                .filter_map(|k| k.as_bulk().cloned())
                .collect(),
        )),
        _ => Err("malformed SCAN reply".into()),
    }
}

/// Whether the source's payloads load on the target as they are.
pub fn versions(source: &End, target: &End, sample: Option<&Sample>, checks: &mut Checks) {
    let (from, source_rdb) = match source {
        End::Server(s) => {
            // The payloads themselves say it best, where a sample read some.
            let rdb = sample.and_then(|s| s.rdb).or_else(|| s.info.rdb_version());
            (s.info.product.clone(), rdb)
        }
        End::File(f) => ("the dump file".to_string(), f.rdb),
        End::Output | End::Unreached => return,
    };
    let End::Server(t) = target else {
        if let (End::Output, Some(rdb)) = (target, source_rdb) {
            checks.ok(
                "versions",
                format!("{from} writes RDB {rdb}; the dump keeps payloads as they are"),
            );
        }
        return;
    };
    let to = &t.info.product;
    match (source_rdb, t.info.rdb_version()) {
        (Some(s), Some(d)) if rdb::version_accepted(d, s) => checks.ok(
            "versions",
            format!("{from} writes RDB {s}, {to} reads up to RDB {d}: values load as they are"),
        ),
        (Some(s), Some(d)) => checks.ok(
            "versions",
            format!(
                "{from} writes RDB {s}, {to} reads RDB {d}: values will be rewritten for the \
                 target (transcoded; a hash with field TTLs needs --drop-field-ttl, a module \
                 type the target lacks fails its key)"
            ),
        ),
        (None, _) => checks.warn(
            "versions",
            format!("the RDB version of {from} is not known: whether {to} loads its values is not either"),
        ),
        (Some(s), None) => checks.warn(
            "versions",
            format!("{from} writes RDB {s}; which versions {to} reads is not known to rump"),
        ),
    }
}

/// A field of `INFO` text.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.parse().ok())
}

/// `INFO memory` of each node of `server`.
fn memory_of(server: &mut Server) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for side in &mut server.nodes {
        let name = node_name(side);
        let reply = side
            .call(0, vec![vec![arg(b"INFO"), arg(b"memory")]])
            .map_err(|e| e.to_string())?;
        match reply.into_iter().next() {
            Some(Frame::Bulk(b)) => out.push((name, text(&b))),
            other => return Err(format!("{name}: INFO memory answered {other:?}")),
        }
    }
    Ok(out)
}

fn node_name(side: &Side) -> String {
    side.nodes()
        .first()
        .map(|n| n.conn.name().to_string())
        .unwrap_or_default()
}

/// The target's free memory (maxmemory minus used, where it has a limit)
/// against the size of the source's data.
pub fn memory(source: &mut End, target: &mut End, config: &Config, checks: &mut Checks) {
    let filtered =
        config.match_pattern.is_some() || config.key_type.is_some() || config.slots.is_some();
    let (need, what) = match source {
        End::Server(s) => match memory_of(s) {
            Ok(nodes) => {
                let used: u64 = nodes
                    .iter()
                    .map(|(_, i)| {
                        info_field(i, "used_memory_dataset")
                            .or_else(|| info_field(i, "used_memory"))
                            .unwrap_or(0)
                    })
                    .sum();
                (used, "the source's data takes")
            }
            Err(e) => {
                checks.warn(
                    "target memory",
                    format!("the source's memory use is unknown: {e}"),
                );
                return;
            }
        },
        End::File(f) => (f.bytes, "the dump's values take at least"),
        End::Output | End::Unreached => return,
    };
    let End::Server(t) = target else {
        return;
    };
    let nodes = match memory_of(t) {
        Ok(nodes) => nodes,
        Err(e) => {
            checks.warn(
                "target memory",
                format!("the target's memory is unknown: {e}"),
            );
            return;
        }
    };
    let mut free = 0u64;
    let mut limited = false;
    for (_, info) in &nodes {
        let max = info_field(info, "maxmemory").unwrap_or(0);
        let used = info_field(info, "used_memory").unwrap_or(0);
        if max > 0 {
            limited = true;
            free += max.saturating_sub(used);
        }
    }
    let part = if filtered {
        " (in all; the selection copies a part of it)"
    } else {
        ""
    };
    if !limited {
        checks.ok(
            "target memory",
            format!(
                "the target has no maxmemory limit; {what} {}{part}",
                human(need)
            ),
        );
        return;
    }
    let message = format!(
        "the target has {} free under maxmemory ({} nodes), {what} {}{part}",
        human(free),
        nodes.len(),
        human(need)
    );
    if need > free && !filtered {
        checks.fail(
            "target memory",
            format!("{message}: it will not fit (the target answers OOM)"),
        );
    } else if need > free || need > free / 10 * 9 {
        checks.warn(
            "target memory",
            format!("{message}: little or no room to spare"),
        );
    } else {
        checks.ok("target memory", message);
    }
}

/// Key counts on both ends.
pub fn keys(source: &mut End, target: &mut End, config: &Config, checks: &mut Checks) -> u64 {
    let total = match source {
        End::Server(s) => dbsize(s).unwrap_or(0),
        End::File(f) => f.records,
        End::Output | End::Unreached => return 0,
    };
    let selected =
        if config.match_pattern.is_some() || config.key_type.is_some() || config.slots.is_some() {
            "; --match, --type and --slots select a part of them"
        } else {
            ""
        };
    if total == 0 {
        checks.warn("keys", "the source holds no keys: there is nothing to copy");
    } else {
        checks.ok(
            "keys",
            format!("the source holds {} keys{selected}", group(total)),
        );
    }
    if let End::Server(t) = target {
        match dbsize(t) {
            Ok(0) => checks.ok("target keys", "the target is empty"),
            Ok(n) => {
                let what = if config.replace {
                    "replaced"
                } else {
                    "kept (--no-replace)"
                };
                checks.warn(
                    "target keys",
                    format!(
                        "the target holds {} keys already: those the source also has are {what}",
                        group(n)
                    ),
                );
            }
            Err(e) => checks.warn("target keys", format!("DBSIZE: {e}")),
        }
    }
    total
}

fn dbsize(server: &mut Server) -> Result<u64, String> {
    let mut total = 0;
    for side in &mut server.nodes {
        let reply = side
            .call(0, vec![vec![arg(b"DBSIZE")]])
            .map_err(|e| e.to_string())?;
        match reply.into_iter().next() {
            Some(Frame::Integer(n)) => total += u64::try_from(n).unwrap_or(0),
            other => return Err(format!("DBSIZE answered {other:?}")),
        }
    }
    Ok(total)
}

/// How long the copy should take, from the sample's read rate.
pub fn estimate(sample: &Sample, keys: u64, masters: usize, checks: &mut Checks) {
    if sample.read == 0 {
        if keys > 0 {
            checks.warn(
                "estimate",
                "the sample found no key the run would copy (check --match, --type, --slots)",
            );
        }
        return;
    }
    let secs = sample.elapsed.as_secs_f64().max(1e-6);
    // Each master of a cluster is read at once.
    let rate = sample.read as f64 / secs * masters.max(1) as f64;
    let expected = keys as f64 / rate;
    let average = sample.bytes / sample.read as u64;
    checks.ok(
        "estimate",
        format!(
            "{} keys read in {:.0} ms ({} keys/s, {} bytes a value): {} for {} keys, at \
             the source's read rate (a slower target makes it longer)",
            group(sample.read as u64),
            secs * 1000.0,
            group(rate as u64),
            group(average),
            duration(expected),
            group(keys)
        ),
    );
}

fn duration(secs: f64) -> String {
    match secs {
        s if s < 1.0 => "under a second".into(),
        s if s < 120.0 => format!("about {s:.0} s"),
        s if s < 7200.0 => format!("about {:.0} min", s / 60.0),
        s => format!("about {:.1} h", s / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_and_durations() {
        let info =
            "# Memory\r\nused_memory:1048576\r\nused_memory_dataset:524288\r\nmaxmemory:0\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1_048_576));
        assert_eq!(info_field(info, "used_memory_dataset"), Some(524_288));
        assert_eq!(info_field(info, "maxmemory"), Some(0));
        assert_eq!(info_field(info, "nope"), None);
        assert_eq!(duration(0.2), "under a second");
        assert_eq!(duration(75.0), "about 75 s");
        assert_eq!(duration(600.0), "about 10 min");
    }

    #[test]
    fn an_empty_sample_is_a_warning_only_when_there_are_keys() {
        let mut checks = Checks::default();
        estimate(&Sample::default(), 0, 1, &mut checks);
        assert!(checks.list.is_empty());
        estimate(&Sample::default(), 5, 1, &mut checks);
        assert_eq!(checks.count(crate::dryrun::report::Status::Warn), 1);
        let sample = Sample {
            read: 1000,
            bytes: 100_000,
            elapsed: Duration::from_millis(100),
            ..Sample::default()
        };
        estimate(&sample, 1_000_000, 1, &mut checks);
        let last = &checks.list[1].message;
        assert!(
            last.contains("10,000 keys/s, 100 bytes a value): about 100 s"),
            "{last}"
        );
    }
}
