//! Reading a database's content through commands every version answers,
//! and comparing two of them as the spec defines equal: order-free for sets
//! and hashes, scores as doubles, lists in order, streams entry by entry
//! and by what `XINFO` and `XPENDING` say, expiries exact.
//!
//! A `DUMP` comparison would be wrong here: the two ends write different
//! encodings of the same value.

use std::collections::BTreeMap;

use resp::Frame;

use super::data::{now_ms, text};
use super::Version;
use crate::util::{Client, Server};

/// One key's value, normalised so equal content compares equal.
#[derive(Debug, PartialEq)]
pub enum Value {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    /// Sorted.
    Set(Vec<Vec<u8>>),
    /// In `ZRANGE` order, scores parsed.
    SortedSet(Vec<(Vec<u8>, f64)>),
    /// Sorted by field.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    Stream(Box<Stream>),
}

/// What the commands say of a stream.
#[derive(Debug, PartialEq)]
pub struct Stream {
    /// `XRANGE - +`.
    pub entries: Frame,
    /// `XINFO STREAM`.
    pub info: Fields,
    pub groups: Vec<Group>,
}

/// One consumer group.
#[derive(Debug, PartialEq)]
pub struct Group {
    /// Its entry of `XINFO GROUPS`.
    pub info: Fields,
    /// `XINFO CONSUMERS`.
    pub consumers: Vec<Fields>,
    /// `XPENDING key group` (count, smallest and largest ID, per consumer).
    pub summary: Frame,
    /// `XPENDING key group - + N`: ID, consumer, idle ms, deliveries.
    pub pending: Vec<(Vec<u8>, Vec<u8>, i64, i64)>,
}

/// A flat `XINFO` reply as a map.
pub type Fields = BTreeMap<String, Frame>;

/// When a key expires, as far as the reading could tell: `[lo, hi]` in Unix
/// ms (equal when read with `PEXPIRETIME`), `None` when it does not.
pub type Expiry = Option<(i64, i64)>;

/// One database: every key with its value and expiry, sorted by key.
pub type Content = BTreeMap<Vec<u8>, (Value, Expiry)>;

/// Reads every key of `db` on `server` (a `version` server).
pub fn read(server: &Server, db: u32, version: Version) -> Content {
    let mut c = server.client();
    c.ok(&["SELECT", &db.to_string()]);
    c.keys()
        .into_iter()
        .map(|key| {
            let value = value(&mut c, &key);
            let expiry = expiry(&mut c, &key, version);
            (key, (value, expiry))
        })
        // A hash whose every field has expired is still held (and
        // listed) until something reclaims it, but it is gone: no command
        // shows a field of it.
        .filter(|(_, (value, _))| *value != Value::Hash(Vec::new()))
        .collect()
}

fn value(c: &mut Client, key: &[u8]) -> Value {
    let kind = text(&c.cmd(&[b"TYPE", key]));
    match kind.as_str() {
        "string" => Value::String(bulk(c.cmd(&[b"GET", key]))),
        "list" => Value::List(bulks(c.cmd(&[b"LRANGE", key, b"0", b"-1"]))),
        "set" => {
            let mut members = bulks(c.cmd(&[b"SMEMBERS", key]));
            members.sort();
            Value::Set(members)
        }
        "zset" => {
            let flat = bulks(c.cmd(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]));
            Value::SortedSet(
                flat.chunks(2)
                    .map(|pair| (pair[0].clone(), score(&pair[1])))
                    .collect(),
            )
        }
        "hash" => {
            let flat = bulks(c.cmd(&[b"HGETALL", key]));
            let mut fields: Vec<_> = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            fields.sort();
            Value::Hash(fields)
        }
        "stream" => Value::Stream(Box::new(stream(c, key))),
        other => panic!(
            "{:?}: unexpected type {other}",
            String::from_utf8_lossy(key)
        ),
    }
}

fn stream(c: &mut Client, key: &[u8]) -> Stream {
    let entries = c.cmd(&[b"XRANGE", key, b"-", b"+"]);
    let info = fields(c.cmd(&[b"XINFO", b"STREAM", key]));
    let groups = array(c.cmd(&[b"XINFO", b"GROUPS", key]))
        .into_iter()
        .map(|g| {
            let info = fields(g);
            let name = info.get("name").and_then(Frame::as_bulk).cloned();
            let name = name.expect("a group has a name").to_vec();
            let consumers = array(c.cmd(&[b"XINFO", b"CONSUMERS", key, &name]))
                .into_iter()
                .map(fields)
                .collect();
            let summary = c.cmd(&[b"XPENDING", key, &name]);
            let pending = array(c.cmd(&[b"XPENDING", key, &name, b"-", b"+", b"100000"]))
                .into_iter()
                .map(|p| {
                    let p = array(p);
                    let int = |f: &Frame| f.as_int().expect("an XPENDING number");
                    (
                        bulk(p[0].clone()),
                        bulk(p[1].clone()),
                        int(&p[2]),
                        int(&p[3]),
                    )
                })
                .collect();
            Group {
                info,
                consumers,
                summary,
                pending,
            }
        })
        .collect();
    Stream {
        entries,
        info,
        groups,
    }
}

/// `PEXPIRETIME` where the server has it (7.0+), else a window from `PTTL`.
fn expiry(c: &mut Client, key: &[u8], version: Version) -> Expiry {
    if version.major >= 7 {
        let at = c.pexpiretime(key);
        return (at >= 0).then_some((at, at));
    }
    let before = now_ms();
    let ttl = c.cmd(&[b"PTTL", key]).as_int().expect("PTTL is a number");
    let after = now_ms();
    (ttl >= 0).then_some((before + ttl, after + ttl + 1))
}

/// Fields that describe how a server laid a stream out in memory, not its
/// content: a re-encoded stream may be cut into nodes differently.
const LAYOUT_FIELDS: [&str; 2] = ["radix-tree-keys", "radix-tree-nodes"];

/// Fields that count milliseconds up to the moment of reading: the two
/// ends are read a moment apart.
const CLOCK_FIELDS: [&str; 2] = ["idle", "inactive"];

/// How far apart (ms) the two ends' readings of a clock field may be.
const CLOCK_SLACK_MS: i64 = 5_000;

/// How far apart (ms) two expiries may be when the source has no
/// `PEXPIRETIME` (rump reads `PTTL`, relative, and adds its own clock).
const RELATIVE_TTL_SLACK_MS: i64 = 1_000;

/// What the two ends of a copy are, for what their replies can hold.
pub struct Ends {
    pub source: Version,
    pub target: Version,
}

/// The `XINFO` replies compared field by field.
#[derive(Clone, Copy)]
enum Info {
    Stream,
    Group,
    Consumer,
}

impl Ends {
    /// The fields of an `XINFO` reply both ends must show (and agree on):
    /// those of Redis 6.2, and the stream metadata RDB 10 (Redis 7.0) added
    /// when both ends have it.
    fn required(&self, of: Info) -> Vec<&'static str> {
        let (all, since_7): (&[&str], &[&str]) = match of {
            Info::Stream => (
                &[
                    "length",
                    "last-generated-id",
                    "groups",
                    "first-entry",
                    "last-entry",
                ],
                &[
                    "entries-added",
                    "max-deleted-entry-id",
                    "recorded-first-entry-id",
                ],
            ),
            Info::Group => (
                &["name", "consumers", "pending", "last-delivered-id"],
                &["entries-read", "lag"],
            ),
            Info::Consumer => (&["name", "pending", "idle"], &[]),
        };
        let mut fields = all.to_vec();
        if self.source.major >= 7 && self.target.major >= 7 {
            fields.extend_from_slice(since_7);
        }
        fields
    }
}

/// Panics unless `target` holds exactly `source`'s keys with equal content
/// and expiry, naming the first differences.
pub fn assert_equal(source: &Content, target: &Content, ends: &Ends) {
    let ours: Vec<_> = source.keys().collect();
    let theirs: Vec<_> = target.keys().collect();
    assert_eq!(
        ours.iter().map(|k| show(k)).collect::<Vec<_>>(),
        theirs.iter().map(|k| show(k)).collect::<Vec<_>>(),
        "{} → {}: the keys differ",
        ends.source.name,
        ends.target.name
    );
    let mut differences = Vec::new();
    for (key, (value, expiry)) in source {
        let (their_value, their_expiry) = &target[key];
        let name = show(key);
        compare_value(&name, value, their_value, ends, &mut differences);
        let slack = if ends.source.major >= 7 {
            0
        } else {
            RELATIVE_TTL_SLACK_MS
        };
        let same_expiry = match (expiry, their_expiry) {
            (None, None) => true,
            (Some((lo, hi)), Some((their_lo, their_hi))) => {
                *their_hi + slack >= *lo && *their_lo <= *hi + slack
            }
            _ => false,
        };
        if !same_expiry {
            differences.push(format!("{name}: expiry {expiry:?} vs {their_expiry:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} → {}: {} differences:\n{}",
        ends.source.name,
        ends.target.name,
        differences.len(),
        differences[..differences.len().min(20)].join("\n")
    );
}

fn compare_value(name: &str, ours: &Value, theirs: &Value, ends: &Ends, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Stream(a), Value::Stream(b)) => compare_stream(name, a, b, ends, out),
        (Value::SortedSet(a), Value::SortedSet(b)) => {
            // Scores as doubles: equal bits, so 0.1 is not "close to" 0.1.
            let bits = |m: &[(Vec<u8>, f64)]| -> Vec<(Vec<u8>, u64)> {
                m.iter().map(|(k, s)| (k.clone(), s.to_bits())).collect()
            };
            if bits(a) != bits(b) {
                let first = a
                    .iter()
                    .zip(b)
                    .find(|(x, y)| x.0 != y.0 || x.1.to_bits() != y.1.to_bits());
                out.push(format!("{name}: sorted sets differ, first {first:?}"));
            }
        }
        (a, b) if a != b => out.push(format!("{name}: {} vs {}", summary(a), summary(b))),
        _ => {}
    }
}

fn compare_stream(name: &str, ours: &Stream, theirs: &Stream, ends: &Ends, out: &mut Vec<String>) {
    if ours.entries != theirs.entries {
        out.push(format!("{name}: XRANGE differs"));
    }
    compare_fields(
        &format!("{name} XINFO STREAM"),
        &ours.info,
        &theirs.info,
        &ends.required(Info::Stream),
        out,
    );
    if ours.groups.len() != theirs.groups.len() {
        out.push(format!(
            "{name}: {} groups vs {}",
            ours.groups.len(),
            theirs.groups.len()
        ));
        return;
    }
    for (a, b) in ours.groups.iter().zip(&theirs.groups) {
        let group = format!("{name} group {:?}", a.info.get("name"));
        compare_fields(&group, &a.info, &b.info, &ends.required(Info::Group), out);
        if a.consumers.len() != b.consumers.len() {
            out.push(format!(
                "{group}: {} consumers vs {}",
                a.consumers.len(),
                b.consumers.len()
            ));
        }
        for (x, y) in a.consumers.iter().zip(&b.consumers) {
            compare_fields(
                &format!("{group} consumer"),
                x,
                y,
                &ends.required(Info::Consumer),
                out,
            );
        }
        if a.summary != b.summary {
            out.push(format!(
                "{group}: XPENDING {:?} vs {:?}",
                a.summary, b.summary
            ));
        }
        let exact = |p: &[(Vec<u8>, Vec<u8>, i64, i64)]| -> Vec<(Vec<u8>, Vec<u8>, i64)> {
            p.iter()
                .map(|(id, c, _, n)| (id.clone(), c.clone(), *n))
                .collect()
        };
        let idle_close = a
            .pending
            .iter()
            .zip(&b.pending)
            .all(|(x, y)| (x.2 - y.2).abs() <= CLOCK_SLACK_MS);
        if exact(&a.pending) != exact(&b.pending) || !idle_close {
            out.push(format!(
                "{group}: XPENDING - + {:?} vs {:?}",
                a.pending, b.pending
            ));
        }
    }
}

/// Compares the fields both replies have (each version adds some), which
/// must include `required`; clock fields within [`CLOCK_SLACK_MS`].
fn compare_fields(
    what: &str,
    ours: &Fields,
    theirs: &Fields,
    required: &[&str],
    out: &mut Vec<String>,
) {
    for field in required {
        if !ours.contains_key(*field) || !theirs.contains_key(*field) {
            out.push(format!(
                "{what}: no {field} on one end ({ours:?} vs {theirs:?})"
            ));
        }
    }
    for (field, value) in ours {
        let Some(their) = theirs.get(field) else {
            continue;
        };
        if LAYOUT_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let same = if CLOCK_FIELDS.contains(&field.as_str()) {
            match (value.as_int(), their.as_int()) {
                (Some(a), Some(b)) => (a - b).abs() <= CLOCK_SLACK_MS,
                _ => value == their,
            }
        } else {
            value == their
        };
        if !same {
            out.push(format!("{what}: {field} {value:?} vs {their:?}"));
        }
    }
}

fn summary(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string of {} bytes", s.len()),
        Value::List(l) => format!("list of {}", l.len()),
        Value::Set(s) => format!("set of {}", s.len()),
        Value::SortedSet(z) => format!("sorted set of {}", z.len()),
        Value::Hash(h) => format!("hash of {}", h.len()),
        Value::Stream(_) => "stream".into(),
    }
}

pub fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn score(text: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(text);
    text.parse()
        .unwrap_or_else(|_| panic!("score {text:?} is not a double"))
}

fn fields(frame: Frame) -> Fields {
    let flat = array(frame);
    flat.chunks(2)
        .map(|pair| (text(&pair[0]), pair[1].clone()))
        .collect()
}

fn array(frame: Frame) -> Vec<Frame> {
    frame
        .into_array()
        .unwrap_or_else(|other| panic!("expected an array, got {other:?}"))
}

fn bulk(frame: Frame) -> Vec<u8> {
    match frame {
        Frame::Bulk(b) => b.to_vec(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn bulks(frame: Frame) -> Vec<Vec<u8>> {
    array(frame).into_iter().map(bulk).collect()
}
