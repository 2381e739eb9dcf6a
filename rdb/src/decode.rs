//! Decoding a payload into the value model: the dispatch on the type byte
//! and every type but streams (see `stream.rs`).
//!
//! Each type's layout follows `rdbLoadObject` in Redis' and Valkey's rdb.c.
//! Where servers convert an old encoding on load (zipmap, ziplist), the
//! value decodes to the same model as the new one.

use bytes::Bytes;

use crate::footer::{self, FOOTER_LEN};
use crate::listpack::{Elem, Listpack};
use crate::reader::{parse_score, Ctx, Reader};
use crate::version::{types::*, FIRST_VALKEY_VERSION, LAST_COMMON_VERSION};
use crate::ziplist::Ziplist;
use crate::{intset, stream, zipmap};
use crate::{Dump, Error, HashField, Limits, Module, Value};

/// The latest field expiry Redis stores (`EB_EXPIRE_TIME_MAX`, 2^48 - 1 ms).
const MAX_FIELD_EXPIRY: u64 = (1 << 48) - 1;

/// `QUICKLIST_NODE_CONTAINER_*`: how a type-18 node holds its elements.
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// Decodes a DUMP payload with the default [`Limits::for_payload`].
///
/// The payload is copied once into a shared buffer that the value's
/// strings then point into; [`decode_bytes`] avoids the copy.
///
/// # Errors
///
/// Any [`Error`] but the encoding ones: a bad footer or CRC, an unknown
/// type byte, a malformed object, a broken limit.
pub fn decode(payload: &[u8]) -> Result<Dump, Error> {
    decode_bytes(Bytes::copy_from_slice(payload))
}

/// Decodes a DUMP payload held in [`Bytes`], without copying it.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_bytes(payload: Bytes) -> Result<Dump, Error> {
    let limits = Limits::for_payload(payload.len());
    decode_with(payload, limits)
}

/// Decodes a DUMP payload under explicit limits.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_with(payload: Bytes, limits: Limits) -> Result<Dump, Error> {
    let (type_byte, version) = footer::verify(&payload)?;
    decode_verified(payload, type_byte, version, limits)
}

/// [`decode_with`] of a payload [`footer::verify`] has already passed.
pub(crate) fn decode_verified(
    payload: Bytes,
    type_byte: u8,
    version: u16,
    limits: Limits,
) -> Result<Dump, Error> {
    let mut ctx = Ctx::new(limits);
    let mut r = Reader::new(&payload, 1, payload.len() - FOOTER_LEN, 0);
    let value = object(type_byte, version, &mut r, &mut ctx)?;
    if !r.is_empty() {
        return Err(Error::TrailingBytes { offset: r.offset() });
    }
    Ok(Dump {
        type_byte,
        version,
        value,
    })
}

fn object(type_byte: u8, version: u16, r: &mut Reader<'_>, ctx: &mut Ctx) -> Result<Value, Error> {
    let redis_line = version > LAST_COMMON_VERSION && version < FIRST_VALKEY_VERSION;
    Ok(match type_byte {
        STRING => Value::String(r.string(ctx, "string")?),
        LIST => Value::List(strings(r, ctx)?),
        SET => Value::Set(strings(r, ctx)?),
        ZSET | ZSET_2 => Value::SortedSet(scored(r, ctx, type_byte == ZSET_2)?),
        HASH => Value::Hash(hash(r, ctx, FieldTtl::None)?),
        MODULE_PRE_GA | MODULE_2 => Value::Module(module(r, ctx, type_byte == MODULE_2)?),
        HASH_ZIPMAP => {
            let (at, blob) = blob(r, ctx, "zipmap")?;
            Value::Hash(zipmap::fields(&blob, at, ctx)?)
        }
        SET_INTSET => {
            let (at, blob) = blob(r, ctx, "intset")?;
            Value::Set(intset::members(&blob, at, ctx)?)
        }
        LIST_ZIPLIST | SET_LISTPACK => {
            let (at, blob) = blob(r, ctx, "encoded list")?;
            let mut out = Vec::new();
            Packed::new(&blob, at, type_byte == SET_LISTPACK)?.elems(ctx, &mut out)?;
            if type_byte == SET_LISTPACK {
                Value::Set(out)
            } else {
                Value::List(out)
            }
        }
        ZSET_ZIPLIST | ZSET_LISTPACK => {
            let (at, blob) = blob(r, ctx, "encoded sorted set")?;
            Value::SortedSet(Packed::new(&blob, at, type_byte == ZSET_LISTPACK)?.scored(ctx)?)
        }
        HASH_ZIPLIST | HASH_LISTPACK => {
            let (at, blob) = blob(r, ctx, "encoded hash")?;
            Value::Hash(Packed::new(&blob, at, type_byte == HASH_LISTPACK)?.fields(ctx, false)?)
        }
        LIST_QUICKLIST | LIST_QUICKLIST_2 => Value::List(quicklist(r, ctx, type_byte)?),
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(stream::decode(type_byte, r, ctx)?))
        }
        HASH_2 if version >= FIRST_VALKEY_VERSION => {
            Value::Hash(hash(r, ctx, FieldTtl::ValkeyAfter)?)
        }
        HASH_2 if redis_line => Value::Hash(hash(r, ctx, FieldTtl::RedisAbsolute)?),
        HASH_METADATA => {
            let base = r.ms("earliest field expiry")?;
            Value::Hash(hash(r, ctx, FieldTtl::RedisRelative(base))?)
        }
        HASH_LISTPACK_EX_PRE_GA if redis_line => Value::Hash(hash_listpack_ex(r, ctx, false)?),
        HASH_LISTPACK_EX_PRE_GA if version > FIRST_VALKEY_VERSION => {
            return Err(Error::UnsupportedType {
                type_byte,
                what: "Valkey 9.2 path hash",
            })
        }
        HASH_LISTPACK_EX => Value::Hash(hash_listpack_ex(r, ctx, true)?),
        _ => return Err(Error::UnknownType { type_byte, version }),
    })
}

/// An encoded blob (listpack, ziplist, intset, zipmap) and where its string
/// starts, for errors inside it.
fn blob(r: &mut Reader<'_>, ctx: &mut Ctx, what: &'static str) -> Result<(usize, Bytes), Error> {
    let at = r.offset();
    Ok((at, r.string(ctx, what)?))
}

/// A count of RDB strings, then the strings (types 1 and 2).
fn strings(r: &mut Reader<'_>, ctx: &mut Ctx) -> Result<Vec<Bytes>, Error> {
    let n = r.count("element count", 1)?;
    let mut out = ctx.vec_for(n, r.remaining(), 1)?;
    for _ in 0..n {
        let s = r.string(ctx, "element")?;
        ctx.push(&mut out, s)?;
    }
    Ok(out)
}

/// Members and scores (types 3 and 5).
fn scored(r: &mut Reader<'_>, ctx: &mut Ctx, binary: bool) -> Result<Vec<(Bytes, f64)>, Error> {
    let min = if binary { 9 } else { 2 };
    let n = r.count("member count", min)?;
    let mut out = ctx.vec_for(n, r.remaining(), min)?;
    for _ in 0..n {
        let member = r.string(ctx, "member")?;
        let at = r.offset();
        let score = if binary {
            r.binary_f64()?
        } else {
            r.text_f64()?
        };
        if score.is_nan() {
            return Err(Error::Corrupt {
                offset: at,
                what: "score (NaN)",
            });
        }
        ctx.push(&mut out, (member, score))?;
    }
    Ok(out)
}

/// Where a hash layout keeps its field TTLs.
#[derive(Clone, Copy)]
enum FieldTtl {
    /// Type 4: none.
    None,
    /// Valkey 9's `RDB_TYPE_HASH_2` (22): after the value, a signed
    /// millisecond time, -1 for none.
    ValkeyAfter,
    /// Redis 7.4's `HASH_METADATA` (24): before the field, a length-encoded
    /// TTL relative to the hash's earliest expiry, plus one (0 for none).
    RedisRelative(u64),
    /// The 7.4-RC layout (22 at RDB 12–79): the same, absolute.
    RedisAbsolute,
}

/// Fields and values, with their TTLs where the layout has them.
fn hash(r: &mut Reader<'_>, ctx: &mut Ctx, ttl: FieldTtl) -> Result<Vec<HashField>, Error> {
    let min = match ttl {
        FieldTtl::None => 2,
        FieldTtl::ValkeyAfter => 10,
        FieldTtl::RedisRelative(_) | FieldTtl::RedisAbsolute => 3,
    };
    let n = r.count("field count", min)?;
    let mut out = ctx.vec_for(n, r.remaining(), min)?;
    for _ in 0..n {
        let mut expires_ms = match ttl {
            FieldTtl::RedisRelative(base) => redis_ttl(r, Some(base))?,
            FieldTtl::RedisAbsolute => redis_ttl(r, None)?,
            FieldTtl::None | FieldTtl::ValkeyAfter => None,
        };
        let field = r.string(ctx, "field")?;
        let value = r.string(ctx, "value")?;
        if let FieldTtl::ValkeyAfter = ttl {
            let at = r.offset();
            expires_ms = match r.ms("field expiry")? as i64 {
                -1 => None,
                t if t >= 0 => Some(t as u64),
                _ => {
                    return Err(Error::Corrupt {
                        offset: at,
                        what: "field expiry",
                    })
                }
            };
        }
        let f = HashField {
            field,
            value,
            expires_ms,
        };
        ctx.push(&mut out, f)?;
    }
    Ok(out)
}

/// A Redis field TTL: 0 for none, else relative to `base` (plus one) or
/// absolute; at most `EB_EXPIRE_TIME_MAX`.
fn redis_ttl(r: &mut Reader<'_>, base: Option<u64>) -> Result<Option<u64>, Error> {
    let at = r.offset();
    let expiry = match (r.len("field TTL")?, base) {
        (0, _) => return Ok(None),
        (t, Some(base)) => t.checked_add(base).map(|e| e - 1),
        (t, None) => Some(t),
    };
    match expiry {
        Some(e) if e <= MAX_FIELD_EXPIRY => Ok(Some(e)),
        _ => Err(Error::Corrupt {
            offset: at,
            what: "field TTL",
        }),
    }
}

/// Redis 7.4's `HASH_LISTPACK_EX` (25): the earliest expiry, then a
/// listpack of (field, value, absolute expiry or 0) triples. Without
/// `with_min`, the 7.4-RC layout (23) without the earliest expiry.
fn hash_listpack_ex(
    r: &mut Reader<'_>,
    ctx: &mut Ctx,
    with_min: bool,
) -> Result<Vec<HashField>, Error> {
    if with_min {
        r.ms("earliest field expiry")?;
    }
    let (at, blob) = blob(r, ctx, "encoded hash")?;
    Packed::new(&blob, at, true)?.fields(ctx, true)
}

/// Quicklists: a node count, then per node a ziplist (type 14), or a
/// container kind and a listpack or a plain element (type 18).
fn quicklist(r: &mut Reader<'_>, ctx: &mut Ctx, type_byte: u8) -> Result<Vec<Bytes>, Error> {
    let v2 = type_byte == LIST_QUICKLIST_2;
    let n = r.count("quicklist node count", if v2 { 2 } else { 1 })?;
    let mut out = Vec::new();
    for _ in 0..n {
        let at = r.offset();
        let container = if v2 {
            r.len("quicklist container")?
        } else {
            CONTAINER_PACKED
        };
        let node = r.string(ctx, "quicklist node")?;
        match container {
            CONTAINER_PLAIN => ctx.push(&mut out, node)?,
            CONTAINER_PACKED => Packed::new(&node, at, v2)?.elems(ctx, &mut out)?,
            _ => {
                return Err(Error::Corrupt {
                    offset: at,
                    what: "quicklist container",
                })
            }
        }
    }
    Ok(out)
}

/// A module value: its type ID, then the body. Type 7's body is walked
/// opcode by opcode to its end marker, as `rdbLoadCheckModuleValue` does,
/// so a payload cut short is caught here rather than by the target.
fn module(r: &mut Reader<'_>, ctx: &mut Ctx, annotated: bool) -> Result<Module, Error> {
    const EOF: u64 = 0;
    const SINT: u64 = 1;
    const UINT: u64 = 2;
    const FLOAT: u64 = 3;
    const DOUBLE: u64 = 4;
    const STRING: u64 = 5;
    let type_id = r.len("module type ID")?;
    let start = r.mark();
    if annotated {
        loop {
            let at = r.offset();
            match r.len("module opcode")? {
                EOF => break,
                SINT | UINT => {
                    r.len("module integer")?;
                }
                FLOAT => {
                    r.take(4, "module float")?;
                }
                DOUBLE => {
                    r.take(8, "module double")?;
                }
                STRING => {
                    r.string(ctx, "module string")?;
                }
                _ => {
                    return Err(Error::Corrupt {
                        offset: at,
                        what: "module opcode",
                    })
                }
            }
        }
    } else {
        let rest = r.remaining();
        r.take(rest, "module value")?;
    }
    Ok(Module {
        type_id,
        body: r.since(start),
        annotated,
    })
}

/// A listpack or a ziplist: both yield [`Elem`]s.
enum Packed<'a> {
    Listpack(Listpack<'a>),
    Ziplist(Ziplist<'a>),
}

impl<'a> Packed<'a> {
    fn new(data: &'a Bytes, at: usize, listpack: bool) -> Result<Packed<'a>, Error> {
        Ok(if listpack {
            Packed::Listpack(Listpack::new(data, at)?)
        } else {
            Packed::Ziplist(Ziplist::new(data, at)?)
        })
    }

    fn next(&mut self) -> Result<Option<Elem>, Error> {
        match self {
            Packed::Listpack(lp) => lp.next(),
            Packed::Ziplist(zl) => zl.next(),
        }
    }

    /// A vector sized for the declared count of records of `per` elements.
    /// The element count the header declares (0 if unknown) and the bytes
    /// of entries left.
    fn sizes(&self) -> (usize, usize) {
        let (declared, remaining) = match self {
            Packed::Listpack(lp) => (lp.declared(), lp.remaining()),
            Packed::Ziplist(zl) => (zl.declared(), zl.remaining()),
        };
        (declared.unwrap_or(0), remaining)
    }

    fn vec_for<T>(&self, ctx: &mut Ctx, per: usize) -> Result<Vec<T>, Error> {
        let (declared, remaining) = self.sizes();
        let n = declared / per;
        // An element takes at least 2 bytes in either format.
        ctx.vec_for(n as u64, remaining, 2 * per)
    }

    fn corrupt(&self, what: &'static str) -> Error {
        match self {
            Packed::Listpack(lp) => lp.corrupt(what),
            Packed::Ziplist(zl) => zl.corrupt(what),
        }
    }

    /// Appends every element to `out`.
    fn elems(mut self, ctx: &mut Ctx, out: &mut Vec<Bytes>) -> Result<(), Error> {
        let (declared, remaining) = self.sizes();
        // An element takes at least 2 bytes in either format.
        ctx.reserve(out, declared, remaining, 2)?;
        while let Some(e) = self.next()? {
            let s = e.into_bytes(ctx)?;
            ctx.push(out, s)?;
        }
        Ok(())
    }

    /// Member, score pairs.
    fn scored(mut self, ctx: &mut Ctx) -> Result<Vec<(Bytes, f64)>, Error> {
        let mut out = self.vec_for(ctx, 2)?;
        while let Some(member) = self.next()? {
            let score = match self.next()? {
                Some(Elem::Int(v)) => v as f64,
                Some(Elem::Str(s)) => parse_score(&s).ok_or_else(|| self.corrupt("score"))?,
                None => return Err(self.corrupt("sorted set (member without a score)")),
            };
            let member = member.into_bytes(ctx)?;
            ctx.push(&mut out, (member, score))?;
        }
        Ok(out)
    }

    /// Field, value pairs; with `ttl`, field, value, expiry triples (the
    /// expiry an integer, 0 for none).
    fn fields(mut self, ctx: &mut Ctx, ttl: bool) -> Result<Vec<HashField>, Error> {
        let mut out = self.vec_for(ctx, if ttl { 3 } else { 2 })?;
        while let Some(field) = self.next()? {
            let field = field.into_bytes(ctx)?;
            let value = self
                .next()?
                .ok_or_else(|| self.corrupt("hash (field without a value)"))?
                .into_bytes(ctx)?;
            let expires_ms = if ttl {
                match self.next()? {
                    Some(Elem::Int(0)) => None,
                    Some(Elem::Int(t)) if t > 0 && t as u64 <= MAX_FIELD_EXPIRY => Some(t as u64),
                    _ => return Err(self.corrupt("field TTL")),
                }
            } else {
                None
            };
            ctx.push(
                &mut out,
                HashField {
                    field,
                    value,
                    expires_ms,
                },
            )?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::footer::seal;
    use crate::listpack::ListpackWriter;
    use crate::writer::Writer;

    const AT: u64 = 4_102_444_800_000;

    /// A payload from a writer's object, sealed at `version`.
    fn payload(w: Writer, version: u16) -> Vec<u8> {
        let mut buf = w.buf;
        seal(&mut buf, version);
        buf
    }

    fn fields(p: &[u8]) -> Vec<(String, String, Option<u64>)> {
        let Value::Hash(fields) = decode(p).expect("decodes").value else {
            panic!("not a hash");
        };
        fields
            .into_iter()
            .map(|f| {
                let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
                (s(&f.field), s(&f.value), f.expires_ms)
            })
            .collect()
    }

    fn ttl_listpack() -> Vec<u8> {
        let mut lp = ListpackWriter::new();
        for s in [&b"a"[..], b"1"] {
            lp.push(s);
        }
        lp.push_int(AT as i64);
        for s in [&b"b"[..], b"2"] {
            lp.push(s);
        }
        lp.push_int(0);
        lp.finish()
    }

    fn want() -> Vec<(String, String, Option<u64>)> {
        vec![
            ("a".into(), "1".into(), Some(AT)),
            ("b".into(), "2".into(), None),
        ]
    }

    /// Type 25 as Redis 7.4 writes a small hash with field TTLs
    /// (`rdbSaveObject`, `OBJ_ENCODING_LISTPACK_EX`).
    #[test]
    fn redis_hash_listpack_ex() {
        let mut w = Writer::new(HASH_LISTPACK_EX, 64);
        w.ms(AT);
        w.string(&ttl_listpack());
        assert_eq!(fields(&payload(w, 12)), want());
    }

    /// Types 22 and 23 at RDB 12: the Redis 7.4 release candidates' layouts.
    #[test]
    fn redis_release_candidate_layouts() {
        let mut w = Writer::new(HASH_LISTPACK_EX_PRE_GA, 64);
        w.string(&ttl_listpack());
        assert_eq!(fields(&payload(w, 12)), want());
        let mut w = Writer::new(HASH_2, 64);
        w.len(2);
        w.len(AT);
        w.string(b"a");
        w.string(b"1");
        w.len(0);
        w.string(b"b");
        w.string(b"2");
        assert_eq!(fields(&payload(w, 12)), want());
    }

    /// Type 24 with TTLs relative to the earliest, plus one, as
    /// `rdbSaveObject` writes a hashtable hash with field TTLs.
    #[test]
    fn redis_hash_metadata() {
        let mut w = Writer::new(HASH_METADATA, 64);
        w.ms(AT);
        w.len(2);
        for (ttl, f, v) in [(1u64, "a", "1"), (0, "b", "2")] {
            w.len(ttl);
            w.string(f.as_bytes());
            w.string(v.as_bytes());
        }
        assert_eq!(fields(&payload(w, 12)), want());
        // A TTL beyond EB_EXPIRE_TIME_MAX is refused.
        let mut w = Writer::new(HASH_METADATA, 64);
        w.ms(MAX_FIELD_EXPIRY);
        w.len(1);
        w.len(2);
        w.string(b"a");
        w.string(b"1");
        assert!(matches!(
            decode(&payload(w, 12)),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn type_bytes_by_version() {
        let unknown = |type_byte: u8, version: u16| {
            let w = Writer::new(type_byte, 8);
            decode(&payload(w, version))
        };
        assert_eq!(
            unknown(HASH_2, 11),
            Err(Error::UnknownType {
                type_byte: 22,
                version: 11
            })
        );
        assert!(matches!(unknown(23, 80), Err(Error::UnknownType { .. })));
        assert!(matches!(
            unknown(23, 81),
            Err(Error::UnsupportedType { .. })
        ));
        assert!(matches!(unknown(8, 10), Err(Error::UnknownType { .. })));
        assert!(matches!(unknown(26, 13), Err(Error::UnknownType { .. })));
    }

    #[test]
    fn module_values_are_carried_opaque() {
        let mut w = Writer::new(MODULE_2, 64);
        w.len(0x1234_5678_9abc_d003);
        let body_start = w.buf.len();
        w.len(1); // SINT
        w.len(5);
        w.len(5); // STRING
        w.string(b"abc");
        w.len(4); // DOUBLE
        w.binary_f64(1.5);
        w.len(3); // FLOAT
        w.raw(&1.5f32.to_le_bytes());
        w.len(0); // EOF
        let body = w.buf[body_start..].to_vec();
        let p = payload(w, 10);
        let Value::Module(m) = decode(&p).expect("decodes").value else {
            panic!("not a module value");
        };
        assert_eq!(m.type_id, 0x1234_5678_9abc_d003);
        assert_eq!(m.encoding_version(), 3);
        assert!(m.annotated);
        assert_eq!(m.body, body);
        // Encoding writes it back byte for byte.
        assert_eq!(crate::encode(&Value::Module(m), 10).expect("encodes"), p);
        // Cut before its end marker, or with an unknown opcode: refused.
        let mut w = Writer::new(MODULE_2, 16);
        w.len(7);
        w.len(1);
        w.len(5);
        assert!(matches!(
            decode(&payload(w, 10)),
            Err(Error::Truncated { .. })
        ));
        let mut w = Writer::new(MODULE_2, 16);
        w.len(7);
        w.len(9);
        assert!(matches!(
            decode(&payload(w, 10)),
            Err(Error::Corrupt { .. })
        ));
        // The 4.0-RC type 6: no opcodes to walk, the rest is the body.
        let mut w = Writer::new(MODULE_PRE_GA, 16);
        w.len(7);
        w.raw(b"opaque");
        let Value::Module(m) = decode(&payload(w, 8)).expect("decodes").value else {
            panic!("not a module value");
        };
        assert!(!m.annotated);
        assert_eq!(&m.body[..], b"opaque");
    }

    #[test]
    fn bytes_after_the_object_are_refused() {
        let mut w = Writer::new(STRING, 8);
        w.string(b"abc");
        w.raw(b"!");
        assert_eq!(
            decode(&payload(w, 9)),
            Err(Error::TrailingBytes { offset: 5 })
        );
    }

    #[test]
    fn counts_the_payload_cannot_hold_allocate_nothing() {
        let mut w = Writer::new(LIST, 16);
        w.len(1 << 60);
        let tight = Limits {
            max_string_len: 16,
            max_alloc: 64,
        };
        let p = Bytes::from(payload(w, 9));
        assert!(matches!(decode_with(p, tight), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn the_budget_bounds_what_a_real_payload_may_build() {
        let p = Bytes::from_static(include_bytes!(
            "../tests/fixtures/redis-7.0/list_large.dump"
        ));
        assert!(decode_bytes(p.clone()).is_ok());
        // 10,000 elements of 32 bytes each cannot fit in 64 KiB.
        let tight = Limits {
            max_string_len: crate::MAX_STRING_LEN,
            max_alloc: 64 << 10,
        };
        assert_eq!(
            decode_with(p, tight),
            Err(Error::Budget { limit: 64 << 10 })
        );
    }

    #[test]
    fn nan_scores_are_refused() {
        let mut w = Writer::new(ZSET_2, 16);
        w.len(1);
        w.string(b"m");
        w.binary_f64(f64::NAN);
        assert!(matches!(decode(&payload(w, 9)), Err(Error::Corrupt { .. })));
        let mut w = Writer::new(ZSET, 16);
        w.len(1);
        w.string(b"m");
        w.raw(&[253]);
        assert!(matches!(decode(&payload(w, 6)), Err(Error::Corrupt { .. })));
    }
}
