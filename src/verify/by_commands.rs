//! [`Canonical`] by type commands: both values are read back from their
//! servers (`GET`, `LRANGE`, `SSCAN`, `HSCAN`, `ZRANGE … WITHSCORES`,
//! `XRANGE`, `XINFO`, `XPENDING`) into [`Value`]s and compared. The stopgap
//! until the payloads are decoded by the `rdb` crate, which needs no reads.
//!
//! Every read is paged ([`CHUNK`] elements a command), so no reply comes
//! near the connection's element limit whatever the value's size. A key is
//! read in rounds ([`Reading`], sans-IO): the first round sends `TYPE` with
//! the first page of the type the payload's first byte names, later rounds
//! the next pages; every key of a batch advances in the same rounds,
//! pipelined, on both ends at once. `TYPE` disagreeing with the payload (the
//! key was replaced meanwhile) starts that key over with the right type.
//!
//! Only commands that read are sent.

use bytes::Bytes;
use resp::Frame;

use crate::error::{quote_key, Error, Role};
use crate::net::handshake::text;
use crate::verify::canonical::{
    canonical_hash, canonical_set, canonical_zset, same, Canonical, Contents, Group, Suspect, Value,
};
use crate::verify::ends::Ends;
use crate::verify::payload::Kind;
use crate::verify::side::{arg, Command, Request, Side};

/// Elements one command reads at most.
pub const CHUNK: usize = 1000;

/// Why a dump file's value cannot be compared by commands.
const FILE_SOURCE: &str = "the payloads differ and rump cannot decode them (a module type, or a \
                           newer format), so a value in a dump file is compared byte for byte";

/// Reads both values back with type commands.
#[derive(Debug, Default)]
pub struct ByCommands;

impl Canonical for ByCommands {
    fn compare(&mut self, suspects: &[Suspect], ends: &mut Ends) -> Result<Vec<Contents>, Error> {
        let keys = |role: Role| -> Vec<(Bytes, Kind)> {
            suspects
                .iter()
                .map(|s| {
                    let payload = match role {
                        Role::Source => &s.source,
                        Role::Target => &s.target,
                    };
                    (s.key.clone(), Kind::of_payload(payload))
                })
                .collect()
        };
        let (ours, theirs) = ends.on_both(|role, side| read_values(side, &keys(role)))?;
        let Some(ours) = ours else {
            return Ok(vec![Contents::Differ(FILE_SOURCE.into()); suspects.len()]);
        };
        Ok(ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| match (a, b) {
                (Value::Absent, _) => Contents::SourceGone,
                (_, Value::Absent) => Contents::TargetGone,
                (a, b) => match same(a, b) {
                    Ok(()) => Contents::Same,
                    Err(why) => Contents::Differ(why),
                },
            })
            .collect())
    }
}

/// Reads the values of `keys` (each with the type its payload names) on
/// `side`, in rounds, every key at once.
pub fn read_values(side: &mut Side, keys: &[(Bytes, Kind)]) -> Result<Vec<Value>, Error> {
    let mut readings: Vec<Reading> = keys
        .iter()
        .map(|(key, kind)| Reading::new(key.clone(), *kind))
        .collect();
    loop {
        let active: Vec<usize> = (0..readings.len())
            .filter(|&i| !readings[i].is_done())
            .collect();
        if active.is_empty() {
            break;
        }
        let requests: Vec<Request> = active
            .iter()
            .map(|&i| Request::key(&readings[i].key, readings[i].commands()))
            .collect();
        let replies = side.round(&requests)?;
        for (&i, frames) in active.iter().zip(replies) {
            readings[i]
                .on_replies(frames)
                .map_err(|message| Error::Server {
                    role: side_role(side),
                    endpoint: side_name(side),
                    command: format!("reading {}", quote_key(&readings[i].key)),
                    message,
                })?;
        }
    }
    Ok(readings.into_iter().map(Reading::into_value).collect())
}

fn side_role(side: &Side) -> Role {
    side.nodes().first().map_or(Role::Source, |n| n.conn.role())
}

fn side_name(side: &Side) -> String {
    side.nodes()
        .first()
        .map_or_else(String::new, |n| n.conn.name().to_string())
}

/// One page (or one question) of a key's value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sub {
    Type,
    Get,
    List(usize),
    Set(Bytes),
    Hash(Bytes),
    Zset(usize),
    /// Entries from this id on (inclusive).
    Entries(Bytes),
    StreamInfo,
    Groups,
    /// A group's (by index) pending entries from this id on.
    Pending(usize, Bytes),
    Consumers(usize),
}

/// The reading of one key, as a state machine over rounds.
#[derive(Debug)]
pub struct Reading {
    key: Bytes,
    kind: Kind,
    subs: Vec<Sub>,
    /// What has been read so far (sets, hashes and sorted sets not yet in
    /// canonical order).
    acc: Value,
}

impl Reading {
    /// A reading that expects `kind` (from the payload); `TYPE` confirms it.
    pub fn new(key: Bytes, kind: Kind) -> Reading {
        let mut reading = Reading {
            key,
            kind,
            subs: Vec::new(),
            acc: Value::Absent,
        };
        reading.start(kind);
        reading.subs.insert(0, Sub::Type);
        reading
    }

    /// Sets up the first pages of a value of `kind`.
    fn start(&mut self, kind: Kind) {
        self.kind = kind;
        let (acc, subs) = match kind {
            Kind::String => (Value::Absent, vec![Sub::Get]),
            Kind::List => (Value::List(Vec::new()), vec![Sub::List(0)]),
            Kind::Set => (Value::Set(Vec::new()), vec![Sub::Set(arg(b"0"))]),
            Kind::Hash => (Value::Hash(Vec::new()), vec![Sub::Hash(arg(b"0"))]),
            Kind::Zset => (Value::Zset(Vec::new()), vec![Sub::Zset(0)]),
            Kind::Stream => (
                Value::Stream(Box::default()),
                vec![Sub::Entries(arg(b"-")), Sub::StreamInfo, Sub::Groups],
            ),
            // Named by TYPE's reply.
            Kind::Module | Kind::Unknown(_) => (Value::Absent, Vec::new()),
        };
        self.acc = acc;
        self.subs = subs;
    }

    pub fn is_done(&self) -> bool {
        self.subs.is_empty()
    }

    /// This round's commands, one per page asked for.
    pub fn commands(&self) -> Vec<Command> {
        let key = &self.key;
        let chunk = CHUNK.to_string();
        let c = |parts: &[&[u8]]| -> Command { parts.iter().map(|p| arg(p)).collect() };
        self.subs
            .iter()
            .map(|sub| match sub {
                Sub::Type => c(&[b"TYPE", key]),
                Sub::Get => c(&[b"GET", key]),
                Sub::List(from) => {
                    let (a, b) = (from.to_string(), (from + CHUNK - 1).to_string());
                    c(&[b"LRANGE", key, a.as_bytes(), b.as_bytes()])
                }
                Sub::Set(cursor) => c(&[b"SSCAN", key, cursor, b"COUNT", chunk.as_bytes()]),
                Sub::Hash(cursor) => c(&[b"HSCAN", key, cursor, b"COUNT", chunk.as_bytes()]),
                Sub::Zset(from) => {
                    let (a, b) = (from.to_string(), (from + CHUNK - 1).to_string());
                    c(&[b"ZRANGE", key, a.as_bytes(), b.as_bytes(), b"WITHSCORES"])
                }
                Sub::Entries(from) => c(&[b"XRANGE", key, from, b"+", b"COUNT", chunk.as_bytes()]),
                Sub::StreamInfo => c(&[b"XINFO", b"STREAM", key]),
                Sub::Groups => c(&[b"XINFO", b"GROUPS", key]),
                Sub::Pending(group, from) => {
                    let name = self.group_name(*group);
                    c(&[b"XPENDING", key, &name, from, b"+", chunk.as_bytes()])
                }
                Sub::Consumers(group) => {
                    let name = self.group_name(*group);
                    c(&[b"XINFO", b"CONSUMERS", key, &name])
                }
            })
            .collect()
    }

    fn group_name(&self, group: usize) -> Bytes {
        match &self.acc {
            Value::Stream(s) => s
                .groups
                .get(group)
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            _ => Bytes::new(),
        }
    }

    /// Takes this round's replies (one per command of [`Reading::commands`]);
    /// the error is the server's text, or what was malformed.
    pub fn on_replies(&mut self, frames: Vec<Frame>) -> Result<(), String> {
        let subs = std::mem::take(&mut self.subs);
        let mut next = Vec::new();
        for (sub, frame) in subs.into_iter().zip(frames) {
            if let Frame::Error(e) = &frame {
                if e.starts_with(b"WRONGTYPE") {
                    // Replaced by a value of another type since TYPE: again.
                    self.subs = vec![Sub::Type];
                    self.acc = Value::Absent;
                    return Ok(());
                }
                return Err(text(e));
            }
            if sub == Sub::Type {
                let name = match &frame {
                    Frame::Simple(name) | Frame::Bulk(name) => name.clone(),
                    other => return Err(format!("unexpected reply to TYPE: {other:?}")),
                };
                if &name[..] == b"none" {
                    self.acc = Value::Absent;
                    return Ok(());
                }
                let kind = Kind::of_type_reply(&name);
                if kind == Kind::Module {
                    self.acc = Value::Opaque(String::from_utf8_lossy(&name).into_owned());
                    return Ok(());
                }
                if kind != self.kind {
                    // The other replies read the wrong type: start over.
                    self.start(kind);
                    return Ok(());
                }
                continue;
            }
            self.take(sub, frame, &mut next)?;
        }
        self.subs = next;
        Ok(())
    }

    /// Adds one page to the value; the pages still to read go to `next`.
    fn take(&mut self, sub: Sub, frame: Frame, next: &mut Vec<Sub>) -> Result<(), String> {
        match (sub, &mut self.acc) {
            (Sub::Get, acc) => {
                *acc = match frame {
                    Frame::Bulk(b) => Value::String(b),
                    Frame::Null => Value::Absent,
                    other => return Err(format!("unexpected reply to GET: {other:?}")),
                }
            }
            (Sub::List(from), Value::List(items)) => {
                let page = bulks(frame)?;
                if page.len() == CHUNK {
                    next.push(Sub::List(from + CHUNK));
                }
                items.extend(page);
            }
            (Sub::Zset(from), Value::Zset(items)) => {
                let page = bulks(frame)?;
                if page.len() == 2 * CHUNK {
                    next.push(Sub::Zset(from + CHUNK));
                }
                for pair in page.chunks_exact(2) {
                    items.push((pair[0].clone(), score(&pair[1])?));
                }
            }
            (Sub::Set(_), Value::Set(items)) => {
                let (cursor, page) = scan_page(frame)?;
                if let Some(cursor) = cursor {
                    next.push(Sub::Set(cursor));
                }
                items.extend(page);
            }
            (Sub::Hash(_), Value::Hash(items)) => {
                let (cursor, page) = scan_page(frame)?;
                if let Some(cursor) = cursor {
                    next.push(Sub::Hash(cursor));
                }
                items.extend(
                    page.chunks_exact(2)
                        .map(|pair| (pair[0].clone(), pair[1].clone())),
                );
            }
            (Sub::Entries(_), Value::Stream(stream)) => {
                let entries = match frame {
                    Frame::Array(entries) => entries,
                    other => return Err(format!("unexpected reply to XRANGE: {other:?}")),
                };
                let full = entries.len() == CHUNK;
                for entry in entries {
                    let mut parts = array(entry)?.into_iter();
                    let id = parts
                        .next()
                        .and_then(|f| f.as_bulk().cloned())
                        .unwrap_or_default();
                    let fields = parts.next().map(bulks).transpose()?.unwrap_or_default();
                    stream.entries.push((id, fields));
                }
                if full {
                    let last = stream
                        .entries
                        .last()
                        .map(|e| e.0.clone())
                        .unwrap_or_default();
                    next.push(Sub::Entries(next_id(&last)?));
                }
            }
            (Sub::StreamInfo, Value::Stream(stream)) => {
                let info = array(frame)?;
                stream.last_id = field(&info, b"last-generated-id")
                    .and_then(|f| f.as_bulk().cloned())
                    .unwrap_or_default();
                stream.entries_added = field(&info, b"entries-added").and_then(Frame::as_int);
            }
            (Sub::Groups, Value::Stream(stream)) => {
                for group in array(frame)? {
                    let info = array(group)?;
                    let bulk = |name: &[u8]| field(&info, name).and_then(|f| f.as_bulk().cloned());
                    let index = stream.groups.len();
                    stream.groups.push(Group {
                        name: bulk(b"name").unwrap_or_default(),
                        last_delivered: bulk(b"last-delivered-id").unwrap_or_default(),
                        entries_read: field(&info, b"entries-read").and_then(Frame::as_int),
                        pending: Vec::new(),
                        consumers: Vec::new(),
                    });
                    next.push(Sub::Pending(index, arg(b"-")));
                    next.push(Sub::Consumers(index));
                }
            }
            (Sub::Pending(group, _), Value::Stream(stream)) => {
                let entries = array(frame)?;
                let full = entries.len() == CHUNK;
                let Some(g) = stream.groups.get_mut(group) else {
                    return Err("a pending-entries reply for no group".into());
                };
                for entry in entries {
                    let parts = array(entry)?;
                    let id = parts
                        .first()
                        .and_then(|f| f.as_bulk().cloned())
                        .unwrap_or_default();
                    let consumer = parts
                        .get(1)
                        .and_then(|f| f.as_bulk().cloned())
                        .unwrap_or_default();
                    let deliveries = parts.get(3).and_then(Frame::as_int).unwrap_or_default();
                    g.pending.push((id, consumer, deliveries));
                }
                if full {
                    let last = g.pending.last().map(|p| p.0.clone()).unwrap_or_default();
                    next.push(Sub::Pending(group, next_id(&last)?));
                }
            }
            (Sub::Consumers(group), Value::Stream(stream)) => {
                let Some(g) = stream.groups.get_mut(group) else {
                    return Err("a consumers reply for no group".into());
                };
                for consumer in array(frame)? {
                    let info = array(consumer)?;
                    let name = field(&info, b"name").and_then(|f| f.as_bulk().cloned());
                    let pending = field(&info, b"pending").and_then(Frame::as_int);
                    g.consumers
                        .push((name.unwrap_or_default(), pending.unwrap_or_default()));
                }
            }
            (sub, _) => return Err(format!("a reply to {sub:?} while reading another type")),
        }
        Ok(())
    }

    /// The value read, in canonical form.
    pub fn into_value(self) -> Value {
        match self.acc {
            Value::Set(items) => canonical_set(items),
            Value::Hash(fields) => canonical_hash(fields),
            Value::Zset(members) => canonical_zset(members),
            Value::Stream(mut stream) => {
                for g in &mut stream.groups {
                    g.consumers.sort();
                }
                stream.groups.sort_by(|a, b| a.name.cmp(&b.name));
                Value::Stream(stream)
            }
            other => other,
        }
    }
}

fn array(frame: Frame) -> Result<Vec<Frame>, String> {
    frame
        .into_array()
        .map_err(|other| format!("expected an array, got {other:?}"))
}

/// The bulk strings of an array reply.
fn bulks(frame: Frame) -> Result<Vec<Bytes>, String> {
    array(frame)?
        .into_iter()
        .map(|f| match f {
            Frame::Bulk(b) | Frame::Simple(b) => Ok(b),
            other => Err(format!("expected a string, got {other:?}")),
        })
        .collect()
}

/// A `*SCAN` reply: the next cursor (`None` at the end) and the page.
fn scan_page(frame: Frame) -> Result<(Option<Bytes>, Vec<Bytes>), String> {
    let mut parts = array(frame)?.into_iter();
    let (Some(Frame::Bulk(cursor)), Some(page)) = (parts.next(), parts.next()) else {
        return Err("malformed SCAN reply".into());
    };
    let page = bulks(page)?;
    Ok(((&cursor[..] != b"0").then_some(cursor), page))
}

/// A field of a map-shaped reply (`[name, value, name, value, …]`).
fn field<'a>(map: &'a [Frame], name: &[u8]) -> Option<&'a Frame> {
    map.chunks_exact(2)
        .find(|pair| pair[0].as_bulk().is_some_and(|n| &n[..] == name))
        .map(|pair| &pair[1])
}

/// A score as a double (`inf`, `-inf` included).
fn score(text: &[u8]) -> Result<f64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("score {:?} is not a number", String::from_utf8_lossy(text)))
}

/// The stream id right after `id` (`ms-seq`), for paging inclusively on
/// servers without exclusive ranges.
fn next_id(id: &[u8]) -> Result<Bytes, String> {
    let bad = || format!("stream id {:?} is malformed", String::from_utf8_lossy(id));
    let text = std::str::from_utf8(id).map_err(|_| bad())?;
    let (ms, seq) = text.split_once('-').ok_or_else(bad)?;
    let (ms, seq): (u64, u64) = (
        ms.parse().map_err(|_| bad())?,
        seq.parse().map_err(|_| bad())?,
    );
    let next = match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1).ok_or_else(bad)?),
    };
    Ok(Bytes::from(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn arr(items: Vec<Frame>) -> Frame {
        Frame::Array(items)
    }

    fn words(cmds: &[Command]) -> Vec<String> {
        cmds.iter()
            .map(|c| {
                c.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn a_set_is_scanned_until_the_cursor_is_zero() {
        let mut r = Reading::new(Bytes::from_static(b"s"), Kind::Set);
        assert_eq!(words(&r.commands()), ["TYPE s", "SSCAN s 0 COUNT 1000"]);
        let page = |cursor: &str, members: &[&str]| {
            arr(vec![b(cursor), arr(members.iter().map(|m| b(m)).collect())])
        };
        r.on_replies(vec![Frame::Simple("set".into()), page("17", &["b", "a"])])
            .unwrap();
        assert_eq!(words(&r.commands()), ["SSCAN s 17 COUNT 1000"]);
        r.on_replies(vec![page("0", &["a", "c"])]).unwrap();
        assert!(r.is_done());
        assert_eq!(
            r.into_value(),
            canonical_set(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn a_type_other_than_the_payloads_starts_the_key_over() {
        let mut r = Reading::new(Bytes::from_static(b"k"), Kind::Set);
        r.on_replies(vec![
            Frame::Simple("list".into()),
            Frame::Error("WRONGTYPE".into()),
        ])
        .unwrap();
        assert_eq!(words(&r.commands()), ["LRANGE k 0 999"]);
        let page: Vec<Frame> = (0..CHUNK).map(|i| b(&i.to_string())).collect();
        r.on_replies(vec![arr(page)]).unwrap();
        assert_eq!(words(&r.commands()), ["LRANGE k 1000 1999"]);
        r.on_replies(vec![arr(vec![b("last")])]).unwrap();
        let Value::List(items) = r.into_value() else {
            panic!()
        };
        assert_eq!(items.len(), CHUNK + 1);

        let mut gone = Reading::new(Bytes::from_static(b"k"), Kind::String);
        gone.on_replies(vec![Frame::Simple("none".into()), Frame::Null])
            .unwrap();
        assert!(gone.is_done());
        assert_eq!(gone.into_value(), Value::Absent);
        let mut module = Reading::new(Bytes::from_static(b"k"), Kind::Module);
        assert_eq!(words(&module.commands()), ["TYPE k"]);
        module
            .on_replies(vec![Frame::Simple("ReJSON-RL".into())])
            .unwrap();
        assert_eq!(module.into_value(), Value::Opaque("ReJSON-RL".into()));
        let mut refused = Reading::new(Bytes::from_static(b"k"), Kind::String);
        let e = refused
            .on_replies(vec![Frame::Error("NOPERM no".into()), Frame::Null])
            .unwrap_err();
        assert_eq!(e, "NOPERM no");
    }

    #[test]
    fn zset_scores_are_read_as_doubles() {
        let mut r = Reading::new(Bytes::from_static(b"z"), Kind::Zset);
        assert_eq!(words(&r.commands())[1], "ZRANGE z 0 999 WITHSCORES");
        r.on_replies(vec![
            Frame::Simple("zset".into()),
            arr(vec![b("a"), b("0.10000000000000001"), b("b"), b("inf")]),
        ])
        .unwrap();
        assert_eq!(
            r.into_value(),
            canonical_zset(vec![("a".into(), 0.1), ("b".into(), f64::INFINITY)])
        );
    }

    #[test]
    fn a_stream_is_read_with_its_groups() {
        let mut r = Reading::new(Bytes::from_static(b"x"), Kind::Stream);
        assert_eq!(
            words(&r.commands()),
            [
                "TYPE x",
                "XRANGE x - + COUNT 1000",
                "XINFO STREAM x",
                "XINFO GROUPS x"
            ]
        );
        r.on_replies(vec![
            Frame::Simple("stream".into()),
            arr(vec![arr(vec![b("1-1"), arr(vec![b("f"), b("v")])])]),
            arr(vec![
                b("length"),
                Frame::Integer(1),
                b("last-generated-id"),
                b("1-1"),
                b("entries-added"),
                Frame::Integer(1),
            ]),
            arr(vec![arr(vec![
                b("name"),
                b("g"),
                b("pending"),
                Frame::Integer(1),
                b("last-delivered-id"),
                b("1-1"),
                b("entries-read"),
                Frame::Integer(1),
            ])]),
        ])
        .unwrap();
        assert_eq!(
            words(&r.commands()),
            ["XPENDING x g - + 1000", "XINFO CONSUMERS x g"]
        );
        r.on_replies(vec![
            arr(vec![arr(vec![
                b("1-1"),
                b("alice"),
                Frame::Integer(5),
                Frame::Integer(2),
            ])]),
            arr(vec![arr(vec![
                b("name"),
                b("alice"),
                b("pending"),
                Frame::Integer(1),
                b("idle"),
                Frame::Integer(5),
            ])]),
        ])
        .unwrap();
        assert!(r.is_done());
        let Value::Stream(s) = r.into_value() else {
            panic!()
        };
        assert_eq!(&s.last_id[..], b"1-1");
        assert_eq!(s.entries_added, Some(1));
        assert_eq!(s.groups[0].pending, vec![("1-1".into(), "alice".into(), 2)]);
        assert_eq!(s.groups[0].consumers, vec![("alice".into(), 1)]);
        assert_eq!(&next_id(b"5-18446744073709551615").unwrap()[..], b"6-0");
        assert_eq!(&next_id(b"5-1").unwrap()[..], b"5-2");
        assert!(next_id(b"x").is_err());
    }
}
