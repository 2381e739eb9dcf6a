//! Streams, both ways: types 15, 19 and 21 (`RDB_TYPE_STREAM_LISTPACKS`,
//! `_2` and `_3`).
//!
//! A stream is its radix tree of listpack nodes, then its metadata, then
//! its consumer groups (`rdbSaveObject` in rdb.c). Each node is keyed by
//! its master ID (16 bytes, big-endian ms and seq) and holds a master entry
//! (`count | deleted | n | field names | 0`) followed by entries:
//! `flags | ms-delta | seq-delta | [n | field names] | values | lp-count`,
//! the field names omitted when `flags` has SAMEFIELDS (the master's
//! names). Entries flagged DELETED are skipped on decode and never written.
//!
//! Type 19 adds the first ID, max deleted ID, entries added and each
//! group's entries read; type 21 adds each consumer's active time. Decoding
//! an older type fills them in as the server does on load; encoding for an
//! older one leaves them out.

use bytes::Bytes;

use crate::listpack::{Listpack, ListpackWriter};
use crate::reader::{id_from_raw, Ctx, Reader};
use crate::version::types::{STREAM_LISTPACKS_2, STREAM_LISTPACKS_3};
use crate::writer::{raw_id, Writer};
use crate::{Consumer, ConsumerGroup, Error, PendingEntry, Stream, StreamEntry, StreamId};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// Redis' defaults for `stream-node-max-entries` and
/// `stream-node-max-bytes`: encoded nodes are cut the same way, so the
/// target appends to them as efficiently as to its own.
const NODE_MAX_ENTRIES: usize = 100;
const NODE_MAX_BYTES: usize = 4096;

/// `SCG_INVALID_ENTRIES_READ` (-1) as it is stored.
const ENTRIES_READ_UNKNOWN: u64 = u64::MAX;

pub(crate) fn decode(type_byte: u8, r: &mut Reader<'_>, ctx: &mut Ctx) -> Result<Stream, Error> {
    let v2 = type_byte >= STREAM_LISTPACKS_2;
    let v3 = type_byte >= STREAM_LISTPACKS_3;
    let nodes = r.count("stream node count", 2)?;
    let mut entries = Vec::new();
    for _ in 0..nodes {
        let at = r.offset();
        let key = r.string(ctx, "stream node key")?;
        let key: [u8; 16] = key[..].try_into().map_err(|_| Error::Corrupt {
            offset: at,
            what: "stream node key (not a 16-byte ID)",
        })?;
        let at = r.offset();
        let lp = r.string(ctx, "stream listpack")?;
        node(&lp, at, id_from_raw(&key), ctx, &mut entries)?;
    }
    let at = r.offset();
    let length = r.len("stream length")?;
    if length != entries.len() as u64 {
        return Err(Error::Corrupt {
            offset: at,
            what: "stream length (disagrees with its entries)",
        });
    }
    let last_id = id(r)?;
    let (first_id, max_deleted_id, entries_added) = if v2 {
        (id(r)?, id(r)?, r.len("stream entries added")?)
    } else {
        // What Redis 7+ computes when it loads a type-15 stream.
        let first = entries.first().map_or(StreamId::MAX, |e| e.id);
        (first, StreamId::default(), length)
    };
    let n = r.count("consumer group count", 5)?;
    let mut groups = ctx.vec_for(n, r.remaining(), 5)?;
    for _ in 0..n {
        let g = group(r, ctx, v2, v3)?;
        ctx.push(&mut groups, g)?;
    }
    Ok(Stream {
        entries,
        last_id,
        first_id,
        max_deleted_id,
        entries_added,
        groups,
    })
}

fn id(r: &mut Reader<'_>) -> Result<StreamId, Error> {
    Ok(StreamId::new(r.len("stream ID")?, r.len("stream ID")?))
}

/// The live entries of one node, appended to `out`.
fn node(
    data: &Bytes,
    at: usize,
    master: StreamId,
    ctx: &mut Ctx,
    out: &mut Vec<StreamEntry>,
) -> Result<(), Error> {
    let corrupt = |what| Error::Corrupt { offset: at, what };
    let mut lp = Listpack::new(data, at)?;
    let count = lp.expect_int()?;
    let deleted = lp.expect_int()?;
    let names = lp.expect_int()?;
    let (Ok(count), Ok(deleted), Ok(names)) = (
        usize::try_from(count),
        usize::try_from(deleted),
        usize::try_from(names),
    ) else {
        return Err(corrupt("stream master entry"));
    };
    if names > lp.remaining() {
        return Err(corrupt("stream master entry"));
    }
    let mut master_names = ctx.vec_for(names as u64, lp.remaining(), 2)?;
    for _ in 0..names {
        let name = lp.expect(ctx)?;
        ctx.push(&mut master_names, name)?;
    }
    if lp.expect_int()? != 0 {
        return Err(corrupt("stream master entry terminator"));
    }
    let total = count
        .checked_add(deleted)
        .filter(|&t| t <= lp.remaining())
        .ok_or(corrupt("stream node entry count"))?;
    let mut live = 0;
    for _ in 0..total {
        let flags = lp.expect_int()?;
        let ms = master.ms.wrapping_add(lp.expect_int()? as u64);
        let seq = master.seq.wrapping_add(lp.expect_int()? as u64);
        let same = flags & FLAG_SAMEFIELDS != 0;
        let n = if same {
            master_names.len()
        } else {
            usize::try_from(lp.expect_int()?)
                .ok()
                .filter(|&n| n <= lp.remaining())
                .ok_or(corrupt("stream entry field count"))?
        };
        let keep = flags & FLAG_DELETED == 0;
        let mut fields = if keep {
            ctx.vec_for(n as u64, lp.remaining(), 2)?
        } else {
            Vec::new()
        };
        for i in 0..n {
            let name = match master_names.get(i) {
                Some(name) if same => name.clone(),
                _ => lp.expect(ctx)?,
            };
            let value = lp.expect(ctx)?;
            if keep {
                ctx.push(&mut fields, (name, value))?;
            }
        }
        let parts = if same { n + 3 } else { 2 * n + 4 };
        if lp.expect_int()? != parts as i64 {
            return Err(corrupt("stream entry (lp-count)"));
        }
        if keep {
            live += 1;
            let entry = StreamEntry {
                id: StreamId::new(ms, seq),
                fields,
            };
            ctx.push(out, entry)?;
        }
    }
    if live != count {
        return Err(corrupt(
            "stream node entry count (disagrees with its flags)",
        ));
    }
    if lp.next()?.is_some() {
        return Err(corrupt("stream node (entries after the last)"));
    }
    Ok(())
}

fn group(r: &mut Reader<'_>, ctx: &mut Ctx, v2: bool, v3: bool) -> Result<ConsumerGroup, Error> {
    let name = r.string(ctx, "consumer group name")?;
    let last_id = id(r)?;
    let entries_read = if v2 {
        Some(r.len("group entries read")?).filter(|&n| n != ENTRIES_READ_UNKNOWN)
    } else {
        None
    };
    let n = r.count("pending entry count", 25)?;
    let mut pending = ctx.vec_for(n, r.remaining(), 25)?;
    for _ in 0..n {
        let entry = PendingEntry {
            id: r.raw_id()?,
            delivery_time_ms: r.ms("delivery time")?,
            delivery_count: r.len("delivery count")?,
        };
        ctx.push(&mut pending, entry)?;
    }
    let min = if v3 { 18 } else { 10 };
    let n = r.count("consumer count", min)?;
    let mut consumers = ctx.vec_for(n, r.remaining(), min)?;
    for _ in 0..n {
        let name = r.string(ctx, "consumer name")?;
        let seen_time_ms = r.ms("consumer seen time")?;
        let active_time_ms = if v3 {
            r.ms("consumer active time")?
        } else {
            seen_time_ms
        };
        let n = r.count("consumer pending count", 16)?;
        let mut ids = ctx.vec_for(n, r.remaining(), 16)?;
        for _ in 0..n {
            let id = r.raw_id()?;
            ctx.push(&mut ids, id)?;
        }
        let consumer = Consumer {
            name,
            seen_time_ms,
            active_time_ms,
            pending: ids,
        };
        ctx.push(&mut consumers, consumer)?;
    }
    Ok(ConsumerGroup {
        name,
        last_id,
        entries_read,
        pending,
        consumers,
    })
}

/// Writes `s` as stream type `type_byte` (15, 19 or 21).
pub(crate) fn encode(s: &Stream, type_byte: u8, w: &mut Writer) {
    let v2 = type_byte >= STREAM_LISTPACKS_2;
    let v3 = type_byte >= STREAM_LISTPACKS_3;
    let nodes = nodes(&s.entries);
    w.count(nodes.len());
    for (master, lp) in &nodes {
        w.string(&raw_id(*master));
        w.string(lp);
    }
    w.count(s.entries.len());
    write_id(w, s.last_id);
    if v2 {
        write_id(w, s.first_id);
        write_id(w, s.max_deleted_id);
        w.len(s.entries_added);
    }
    w.count(s.groups.len());
    for g in &s.groups {
        w.string(&g.name);
        write_id(w, g.last_id);
        if v2 {
            w.len(g.entries_read.unwrap_or(ENTRIES_READ_UNKNOWN));
        }
        w.count(g.pending.len());
        for p in &g.pending {
            w.raw_id(p.id);
            w.ms(p.delivery_time_ms);
            w.len(p.delivery_count);
        }
        w.count(g.consumers.len());
        for c in &g.consumers {
            w.string(&c.name);
            w.ms(c.seen_time_ms);
            if v3 {
                w.ms(c.active_time_ms);
            }
            w.count(c.pending.len());
            for &id in &c.pending {
                w.raw_id(id);
            }
        }
    }
}

fn write_id(w: &mut Writer, id: StreamId) {
    w.len(id.ms);
    w.len(id.seq);
}

/// The entries cut into nodes of at most [`NODE_MAX_ENTRIES`] entries and
/// about [`NODE_MAX_BYTES`] bytes: each node's master ID and listpack.
fn nodes(entries: &[StreamEntry]) -> Vec<(StreamId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = entries;
    while let Some(first) = rest.first() {
        let master = first.id;
        let names: Vec<&[u8]> = first.fields.iter().map(|(f, _)| &f[..]).collect();
        let mut body = ListpackWriter::new();
        let mut taken = 0;
        for e in rest {
            if taken == NODE_MAX_ENTRIES || (taken > 0 && body.len() >= NODE_MAX_BYTES) {
                break;
            }
            let same = e.fields.len() == names.len()
                && e.fields.iter().zip(&names).all(|((f, _), n)| &f[..] == *n);
            body.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
            body.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
            body.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
            if !same {
                body.push_int(e.fields.len() as i64);
            }
            for (f, v) in &e.fields {
                if !same {
                    body.push(f);
                }
                body.push(v);
            }
            let n = e.fields.len();
            body.push_int(if same { n + 3 } else { 2 * n + 4 } as i64);
            taken += 1;
        }
        let mut lp = ListpackWriter::new();
        lp.push_int(taken as i64);
        lp.push_int(0);
        lp.push_int(names.len() as i64);
        for n in &names {
            lp.push(n);
        }
        lp.push_int(0);
        lp.append(body);
        out.push((master, lp.finish()));
        rest = &rest[taken..];
    }
    out
}
