//! The order-free form of a value, and the one interface through which a
//! verify compares two values whose `DUMP` payloads differ.
//!
//! Payloads differ for equal values more often than not across versions
//! (Redis 7.0 writes a small set as a hashtable, Valkey 8.1 as a listpack)
//! and even on one version (a hashtable-encoded set or hash is serialised in
//! its table's order, which depends on each server's hash seed). So such
//! values are compared in a canonical [`Value`]: sets and hashes sorted,
//! sorted-set scores as doubles, streams with their consumer groups.
//!
//! [`Canonical`] is the switch point: [`ByPayload`](super::by_payload::ByPayload)
//! decodes the payloads themselves (the `rdb` crate) into these [`Value`]s
//! and needs no reads at all; for a payload it cannot decode it falls back
//! to [`ByCommands`](super::by_commands::ByCommands), which reads both
//! values back with type commands.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::error::{quote_key, Error};
use crate::verify::ends::Ends;

/// A key whose payloads differ on the two ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub key: Bytes,
    /// The source's `DUMP` payload.
    pub source: Bytes,
    /// The target's.
    pub target: Bytes,
}

/// What comparing the contents found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    Same,
    /// Different, and why (one phrase).
    Differ(String),
    /// The key is gone from the source now: nothing left to compare.
    SourceGone,
    /// The key is gone from the target now.
    TargetGone,
}

/// Compares values whose payloads differ.
pub trait Canonical: Send {
    /// One verdict per suspect, in order. `ends` reaches both servers, for
    /// an implementation that reads the values back.
    fn compare(&mut self, suspects: &[Suspect], ends: &mut Ends) -> Result<Vec<Contents>, Error>;
}

/// A stream's consumer group, as far as it is compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    pub name: Bytes,
    pub last_delivered: Bytes,
    /// `entries-read` (Redis 7.0+), when the server reports it.
    pub entries_read: Option<i64>,
    /// Pending entries: id, consumer, deliveries (the idle time is left
    /// out: it grows while the two ends are read).
    pub pending: Vec<(Bytes, Bytes, i64)>,
    /// Consumers and how many entries each has pending.
    pub consumers: Vec<(Bytes, i64)>,
}

/// A stream, as far as it is compared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Entry ids and their field-value lists, in id order.
    pub entries: Vec<(Bytes, Vec<Bytes>)>,
    pub last_id: Bytes,
    /// `entries-added` (Redis 7.0+), when the server reports it.
    pub entries_added: Option<i64>,
    /// Sorted by name.
    pub groups: Vec<Group>,
}

/// A value in canonical form.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(Bytes),
    List(Vec<Bytes>),
    /// Sorted, without duplicates.
    Set(Vec<Bytes>),
    /// Sorted by field, without duplicates.
    Hash(Vec<(Bytes, Bytes)>),
    /// Sorted by member; scores as doubles.
    Zset(Vec<(Bytes, f64)>),
    Stream(Box<Stream>),
    /// A type that type commands cannot read (a module's), by name.
    Opaque(String),
    /// The key does not exist (any more).
    Absent,
}

impl Value {
    /// The name `TYPE` gives this value.
    pub fn type_name(&self) -> &str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::Zset(_) => "zset",
            Value::Stream(_) => "stream",
            Value::Opaque(name) => name,
            Value::Absent => "none",
        }
    }
}

/// Puts set members in canonical order.
pub fn canonical_set(mut members: Vec<Bytes>) -> Value {
    members.sort_unstable();
    members.dedup();
    Value::Set(members)
}

/// Puts hash fields in canonical order (a field seen twice, as `HSCAN` may
/// return it, counts once).
pub fn canonical_hash(mut fields: Vec<(Bytes, Bytes)>) -> Value {
    fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    fields.dedup_by(|a, b| a.0 == b.0);
    Value::Hash(fields)
}

/// Puts sorted-set members in canonical order (by member, not by score).
pub fn canonical_zset(mut members: Vec<(Bytes, f64)>) -> Value {
    members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    members.dedup_by(|a, b| a.0 == b.0);
    Value::Zset(members)
}

/// `Ok` when `source` and `target` are the same value; otherwise why not,
/// in one phrase that names the first difference (binary-safe).
pub fn same(source: &Value, target: &Value) -> Result<(), String> {
    match (source, target) {
        (Value::String(a), Value::String(b)) => {
            if a == b {
                Ok(())
            } else {
                Err(format!(
                    "string values differ ({} bytes on the source, {} on the target)",
                    a.len(),
                    b.len()
                ))
            }
        }
        (Value::List(a), Value::List(b)) => match a.iter().zip(b).position(|(x, y)| x != y) {
            Some(i) => Err(format!("lists differ at index {i}")),
            None if a.len() != b.len() => Err(format!(
                "lists differ in length ({} on the source, {} on the target)",
                a.len(),
                b.len()
            )),
            None => Ok(()),
        },
        (Value::Set(a), Value::Set(b)) => {
            let (only_a, only_b) = only_in(a, b, |x, y| x.cmp(y));
            differ_by_members("set", only_a, only_b, a.len(), b.len())
        }
        (Value::Hash(a), Value::Hash(b)) => {
            let (only_a, only_b) = only_in(a, b, |x, y| x.0.cmp(&y.0));
            differ_by_members("hash", only_a, only_b, a.len(), b.len())?;
            match a.iter().zip(b).find(|(x, y)| x.1 != y.1) {
                Some((x, _)) => Err(format!("hash field {} differs", quote_key(&x.0))),
                None => Ok(()),
            }
        }
        (Value::Zset(a), Value::Zset(b)) => {
            let (only_a, only_b) = only_in(a, b, |x, y| x.0.cmp(&y.0));
            differ_by_members("zset", only_a, only_b, a.len(), b.len())?;
            // Scores as doubles: 0.1 is 0.1 whichever digits a server prints.
            match a
                .iter()
                .zip(b)
                .find(|(x, y)| x.1.to_bits() != y.1.to_bits())
            {
                Some((x, y)) => Err(format!(
                    "zset member {} has score {} on the source, {} on the target",
                    quote_key(&x.0),
                    x.1,
                    y.1
                )),
                None => Ok(()),
            }
        }
        (Value::Stream(a), Value::Stream(b)) => same_stream(a, b),
        (Value::Opaque(a), Value::Opaque(b)) if a == b => Err(format!(
            "{a} values: the payloads differ, and type commands cannot read this type"
        )),
        (a, b) => Err(format!(
            "type {} on the source, {} on the target",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn same_stream(a: &Stream, b: &Stream) -> Result<(), String> {
    if let Some(i) = a.entries.iter().zip(&b.entries).position(|(x, y)| x != y) {
        return Err(format!(
            "stream entry {} differs",
            String::from_utf8_lossy(&a.entries[i].0)
        ));
    }
    if a.entries.len() != b.entries.len() {
        return Err(format!(
            "streams differ in length ({} on the source, {} on the target)",
            a.entries.len(),
            b.entries.len()
        ));
    }
    if a.last_id != b.last_id {
        return Err(format!(
            "stream last id {} on the source, {} on the target",
            String::from_utf8_lossy(&a.last_id),
            String::from_utf8_lossy(&b.last_id)
        ));
    }
    if let (Some(x), Some(y)) = (a.entries_added, b.entries_added) {
        if x != y {
            return Err(format!(
                "stream entries-added {x} on the source, {y} on the target"
            ));
        }
    }
    let names = |s: &Stream| s.groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        return Err(format!(
            "stream has {} consumer groups on the source, {} on the target",
            a.groups.len(),
            b.groups.len()
        ));
    }
    for (x, y) in a.groups.iter().zip(&b.groups) {
        let group = quote_key(&x.name);
        let read = match (x.entries_read, y.entries_read) {
            (Some(p), Some(q)) => p == q,
            _ => true,
        };
        if x.last_delivered != y.last_delivered || !read {
            return Err(format!("consumer group {group}: last delivered id differs"));
        }
        if x.pending != y.pending {
            return Err(format!(
                "consumer group {group}: pending entries differ ({} on the source, {} on the \
                 target)",
                x.pending.len(),
                y.pending.len()
            ));
        }
        if x.consumers != y.consumers {
            return Err(format!("consumer group {group}: consumers differ"));
        }
    }
    Ok(())
}

/// How many elements of sorted `a` are missing from sorted `b`, and the
/// other way round.
fn only_in<T>(a: &[T], b: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> (usize, usize) {
    let (mut i, mut j, mut only_a, mut only_b) = (0, 0, 0, 0);
    while i < a.len() && j < b.len() {
        match cmp(&a[i], &b[j]) {
            Ordering::Less => {
                only_a += 1;
                i += 1;
            }
            Ordering::Greater => {
                only_b += 1;
                j += 1;
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    (only_a + a.len() - i, only_b + b.len() - j)
}

fn differ_by_members(
    what: &str,
    only_source: usize,
    only_target: usize,
    source_len: usize,
    target_len: usize,
) -> Result<(), String> {
    if only_source == 0 && only_target == 0 {
        return Ok(());
    }
    Err(format!(
        "{what} members differ: {only_source} only on the source, {only_target} only on the \
         target ({source_len} and {target_len} in all)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn bs(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| b(s)).collect()
    }

    #[test]
    fn sets_and_hashes_are_equal_in_any_order() {
        let x = canonical_set(bs(&["b", "c", "a"]));
        let y = canonical_set(bs(&["a", "b", "c", "b"]));
        assert_eq!(same(&x, &y), Ok(()));
        let z = canonical_set(bs(&["a", "d"]));
        assert_eq!(
            same(&x, &z).unwrap_err(),
            "set members differ: 2 only on the source, 1 only on the target (3 and 2 in all)"
        );
        let h1 = canonical_hash(vec![(b("f"), b("1")), (b("g"), b("2"))]);
        let h2 = canonical_hash(vec![(b("g"), b("2")), (b("f"), b("1"))]);
        assert_eq!(same(&h1, &h2), Ok(()));
        let h3 = canonical_hash(vec![(b("g"), b("2")), (b("f"), b("\x00"))]);
        assert_eq!(same(&h1, &h3).unwrap_err(), "hash field \"f\" differs");
    }

    #[test]
    fn scores_are_doubles_and_lists_keep_their_order() {
        let z1 = canonical_zset(vec![(b("a"), 0.1), (b("b"), 2.0)]);
        let z2 = canonical_zset(vec![
            (b("b"), "2".parse().unwrap()),
            (b("a"), "0.10000000000000001".parse().unwrap()),
        ]);
        assert_eq!(same(&z1, &z2), Ok(()));
        let z3 = canonical_zset(vec![(b("a"), 0.1), (b("b"), 3.0)]);
        assert!(same(&z1, &z3)
            .unwrap_err()
            .contains("\"b\" has score 2 on the source, 3"));
        let l1 = Value::List(bs(&["a", "b"]));
        assert_eq!(
            same(&l1, &Value::List(bs(&["b", "a"]))).unwrap_err(),
            "lists differ at index 0"
        );
        assert!(same(&l1, &Value::List(bs(&["a"])))
            .unwrap_err()
            .contains("length"));
        assert_eq!(
            same(&l1, &canonical_set(bs(&["a"]))).unwrap_err(),
            "type list on the source, set on the target"
        );
        assert!(same(&Value::String(b("x")), &Value::String(b("yy"))).is_err());
        assert!(same(
            &Value::Opaque("ReJSON-RL".into()),
            &Value::Opaque("ReJSON-RL".into())
        )
        .is_err());
    }

    #[test]
    fn streams_compare_entries_ids_and_groups() {
        let group = Group {
            name: b("g"),
            last_delivered: b("1-1"),
            entries_read: Some(1),
            pending: vec![(b("1-1"), b("alice"), 1)],
            consumers: vec![(b("alice"), 1)],
        };
        let s = Stream {
            entries: vec![(b("1-1"), bs(&["f", "v"]))],
            last_id: b("1-1"),
            entries_added: Some(1),
            groups: vec![group],
        };
        let mut t = s.clone();
        t.entries_added = None;
        assert_eq!(
            same(
                &Value::Stream(Box::new(s.clone())),
                &Value::Stream(Box::new(t))
            ),
            Ok(())
        );
        let mut t = s.clone();
        t.groups[0].pending[0].2 = 2;
        assert!(same(
            &Value::Stream(Box::new(s.clone())),
            &Value::Stream(Box::new(t))
        )
        .unwrap_err()
        .contains("pending entries differ"));
        let mut t = s.clone();
        t.last_id = b("2-0");
        assert!(
            same(&Value::Stream(Box::new(s)), &Value::Stream(Box::new(t)))
                .unwrap_err()
                .contains("last id 1-1 on the source, 2-0")
        );
    }
}
