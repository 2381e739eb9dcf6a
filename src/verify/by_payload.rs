//! [`Canonical`] by decoding the `DUMP` payloads themselves (the `rdb`
//! crate): both values are already in hand, so no read goes to either
//! server, and a dump file's values are compared by content too. A payload
//! the crate cannot decode (a module type, a format newer than it knows) is
//! left to [`ByCommands`], which reads the values back.

use bytes::Bytes;

use crate::error::Error;
use crate::verify::by_commands::ByCommands;
use crate::verify::canonical::{
    canonical_hash, canonical_set, canonical_zset, same, Canonical, Contents, Group, Stream,
    Suspect, Value,
};
use crate::verify::ends::Ends;

/// Decodes both payloads; falls back to type commands for what it cannot.
#[derive(Debug, Default)]
pub struct ByPayload {
    commands: ByCommands,
}

impl Canonical for ByPayload {
    fn compare(&mut self, suspects: &[Suspect], ends: &mut Ends) -> Result<Vec<Contents>, Error> {
        let mut verdicts = Vec::with_capacity(suspects.len());
        let mut undecoded = Vec::new();
        for (i, suspect) in suspects.iter().enumerate() {
            match (decoded(&suspect.source), decoded(&suspect.target)) {
                (Some(a), Some(b)) => verdicts.push(Some(match same(&a, &b) {
                    Ok(()) => Contents::Same,
                    Err(why) => Contents::Differ(why),
                })),
                _ => {
                    verdicts.push(None);
                    undecoded.push(i);
                }
            }
        }
        if !undecoded.is_empty() {
            let rest: Vec<Suspect> = undecoded.iter().map(|&i| suspects[i].clone()).collect();
            for (i, verdict) in undecoded
                .into_iter()
                .zip(self.commands.compare(&rest, ends)?)
            {
                verdicts[i] = Some(verdict);
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.unwrap_or(Contents::Differ("not compared".into())))
            .collect())
    }
}

/// The canonical form of a payload, or `None` when it cannot be decoded.
fn decoded(payload: &Bytes) -> Option<Value> {
    let dump = rdb::decode_bytes(payload.clone()).ok()?;
    // entries-added exists from the second stream layout (type 19) on.
    let tracks_added = dump.type_byte >= 19;
    Some(match dump.value {
        rdb::Value::String(s) => Value::String(s),
        rdb::Value::List(items) => Value::List(items),
        rdb::Value::Set(members) => canonical_set(members),
        rdb::Value::SortedSet(members) => canonical_zset(members),
        rdb::Value::Hash(fields) => {
            canonical_hash(fields.into_iter().map(|f| (f.field, f.value)).collect())
        }
        rdb::Value::Stream(stream) => Value::Stream(Box::new(stream_of(&stream, tracks_added))),
        rdb::Value::Module(_) => return None,
    })
}

fn id(id: rdb::StreamId) -> Bytes {
    Bytes::from(format!("{}-{}", id.ms, id.seq))
}

/// A stream as [`ByCommands`] reads it: entries and their fields, last id,
/// entries-added where the layout has it, and each group with its pending
/// entries (id, owner, deliveries) and consumers (name, entries pending).
fn stream_of(stream: &rdb::Stream, tracks_added: bool) -> Stream {
    let entries = stream
        .entries
        .iter()
        .map(|e| {
            let fields = e
                .fields
                .iter()
                .flat_map(|(f, v)| [f.clone(), v.clone()])
                .collect();
            (id(e.id), fields)
        })
        .collect();
    let mut groups: Vec<Group> = stream
        .groups
        .iter()
        .map(|g| {
            let owner = |entry: rdb::StreamId| {
                g.consumers
                    .iter()
                    .find(|c| c.pending.contains(&entry))
                    .map_or_else(Bytes::new, |c| c.name.clone())
            };
            let mut consumers: Vec<(Bytes, i64)> = g
                .consumers
                .iter()
                .map(|c| (c.name.clone(), c.pending.len() as i64))
                .collect();
            consumers.sort();
            Group {
                name: g.name.clone(),
                last_delivered: id(g.last_id),
                entries_read: g.entries_read.map(|n| n as i64),
                pending: g
                    .pending
                    .iter()
                    .map(|p| (id(p.id), owner(p.id), p.delivery_count as i64))
                    .collect(),
                consumers,
            }
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Stream {
        entries,
        last_id: id(stream.last_id),
        entries_added: tracks_added.then_some(stream.entries_added as i64),
        groups,
    }
}
