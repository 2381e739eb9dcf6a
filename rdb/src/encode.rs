//! Encoding a value for a target RDB version, in the plain encodings every
//! server back to Redis 2.6 loads, and the transcoding entry point that
//! picks the cheapest way to make a payload loadable.
//!
//! | value | type written | why |
//! | --- | --- | --- |
//! | string | 0 | integers in 32 bits int-encoded, as servers do |
//! | list | 1 (linked list) | loaded by every version; the target re-packs it |
//! | set | 2 | idem |
//! | sorted set | 5 (binary scores), 3 (text) before RDB 8 | exact scores |
//! | hash | 4; with field TTLs 24 (Redis 12–79) or 22 (Valkey 80+) | |
//! | stream | 15 at 9, 19 at 10, 21 from 11 | each the richest the target has |
//! | module | 7 (6 if it was 6), body as it came | only the module reads it |
//!
//! No LZF: the target does not need it and compressing would cost more
//! than the bytes it saves on a local network.

use bytes::Bytes;

use crate::decode::decode_verified;
use crate::footer::{reseal, seal, verify};
use crate::version::{plan, types::*, Plan, FIRST_VALKEY_VERSION};
use crate::writer::Writer;
use crate::{stream, Error, HashField, Limits, Value};

/// The latest field expiry Redis' type 24 can hold (`EB_EXPIRE_TIME_MAX`).
const MAX_REDIS_FIELD_EXPIRY: u64 = (1 << 48) - 1;

/// How to encode what a target cannot hold exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Write a hash with field TTLs without them when the target has no
    /// encoding for them (`--drop-field-ttl`), instead of failing.
    pub drop_field_ttl: bool,
}

/// Encodes `value` as a DUMP payload a server of RDB version `target`
/// loads, with default options.
///
/// # Errors
///
/// [`Error::FieldTtlUnsupported`] for field TTLs the target cannot hold,
/// [`Error::KindUnsupported`] for a stream before RDB 9 or a module value
/// before 8, [`Error::InvalidValue`] for a NaN score or an out-of-range
/// field expiry.
pub fn encode(value: &Value, target: u16) -> Result<Vec<u8>, Error> {
    encode_with(value, target, &EncodeOptions::default())
}

/// Encodes `value` for RDB version `target` under `options`.
///
/// # Errors
///
/// As [`encode`]; with `drop_field_ttl`, never `FieldTtlUnsupported`.
pub fn encode_with(value: &Value, target: u16, options: &EncodeOptions) -> Result<Vec<u8>, Error> {
    let mut w = match value {
        Value::String(s) => {
            let mut w = Writer::new(STRING, s.len() + 16);
            w.string(s);
            w
        }
        Value::List(items) | Value::Set(items) => {
            let type_byte = if matches!(value, Value::List(_)) {
                LIST
            } else {
                SET
            };
            let size: usize = items.iter().map(|s| s.len() + 2).sum();
            let mut w = Writer::new(type_byte, size + 16);
            w.count(items.len());
            for s in items {
                w.string(s);
            }
            w
        }
        Value::SortedSet(members) => sorted_set(members, target)?,
        Value::Hash(fields) => hash(fields, target, options)?,
        Value::Stream(s) => {
            let type_byte = match target {
                0..=8 => {
                    return Err(Error::KindUnsupported {
                        kind: "stream",
                        target,
                        needs: 9,
                    })
                }
                9 => STREAM_LISTPACKS,
                10 => STREAM_LISTPACKS_2,
                _ => STREAM_LISTPACKS_3,
            };
            let mut w = Writer::new(type_byte, 256);
            stream::encode(s, type_byte, &mut w);
            w
        }
        Value::Module(m) => {
            if m.annotated && target < 8 {
                return Err(Error::KindUnsupported {
                    kind: "module value",
                    target,
                    needs: 8,
                });
            }
            let mut w = Writer::new(
                if m.annotated { MODULE_2 } else { MODULE_PRE_GA },
                m.body.len() + 16,
            );
            w.len(m.type_id);
            w.raw(&m.body);
            w
        }
    };
    seal(&mut w.buf, target);
    Ok(w.buf)
}

fn sorted_set(members: &[(Bytes, f64)], target: u16) -> Result<Writer, Error> {
    if members.iter().any(|(_, s)| s.is_nan()) {
        return Err(Error::InvalidValue {
            what: "a sorted set score is NaN",
        });
    }
    let binary = target >= 8;
    let size: usize = members.iter().map(|(m, _)| m.len() + 11).sum();
    let mut w = Writer::new(if binary { ZSET_2 } else { ZSET }, size + 16);
    w.count(members.len());
    for (member, score) in members {
        w.string(member);
        if binary {
            w.binary_f64(*score);
        } else {
            w.text_f64(*score);
        }
    }
    Ok(w)
}

fn hash(fields: &[HashField], target: u16, options: &EncodeOptions) -> Result<Writer, Error> {
    let size: usize = fields
        .iter()
        .map(|f| f.field.len() + f.value.len() + 12)
        .sum();
    let with_ttl = fields.iter().any(|f| f.expires_ms.is_some());
    if !with_ttl || (options.drop_field_ttl && target < 12) {
        let mut w = Writer::new(HASH, size + 16);
        w.count(fields.len());
        for f in fields {
            w.string(&f.field);
            w.string(&f.value);
        }
        return Ok(w);
    }
    if target >= FIRST_VALKEY_VERSION {
        // Valkey's HASH_2: field, value, expiry (-1: none).
        if fields
            .iter()
            .any(|f| f.expires_ms.is_some_and(|t| t > i64::MAX as u64))
        {
            return Err(Error::InvalidValue {
                what: "a field expiry is beyond what Valkey stores",
            });
        }
        let mut w = Writer::new(HASH_2, size + 16);
        w.count(fields.len());
        for f in fields {
            w.string(&f.field);
            w.string(&f.value);
            w.ms(f.expires_ms.map_or(u64::MAX, |t| t));
        }
        Ok(w)
    } else if target >= 12 {
        // Redis' HASH_METADATA: TTLs relative to the earliest, plus one.
        let min = fields
            .iter()
            .filter_map(|f| f.expires_ms)
            .min()
            .unwrap_or(0);
        if fields
            .iter()
            .any(|f| f.expires_ms.is_some_and(|t| t > MAX_REDIS_FIELD_EXPIRY))
        {
            return Err(Error::InvalidValue {
                what: "a field expiry is beyond what Redis stores (2^48 - 1 ms)",
            });
        }
        let mut w = Writer::new(HASH_METADATA, size + 24);
        w.ms(min);
        w.count(fields.len());
        for f in fields {
            w.len(f.expires_ms.map_or(0, |t| t - min + 1));
            w.string(&f.field);
            w.string(&f.value);
        }
        Ok(w)
    } else {
        Err(Error::FieldTtlUnsupported { target })
    }
}

/// What [`transcode`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transcoded {
    /// The target accepts the payload as it is.
    Unchanged,
    /// The same bytes with the target's version and CRC.
    Footer(Vec<u8>),
    /// Decoded and encoded again in plain encodings.
    Reencoded(Vec<u8>),
}

/// Makes `payload` loadable by a server of RDB version `target`, the
/// cheapest way ([`plan`]): untouched, with a new footer, or re-encoded.
///
/// # Errors
///
/// A payload that does not decode, or a value the target cannot hold
/// (see [`encode`]).
///
/// The CRC is checked once, whatever the path; a re-encode decodes under
/// [`Limits::for_payload`] and shares the payload's buffer (no copy).
pub fn transcode(
    payload: &Bytes,
    target: u16,
    options: &EncodeOptions,
) -> Result<Transcoded, Error> {
    let (type_byte, version) = verify(payload)?;
    match plan(type_byte, version, target) {
        Plan::PassThrough => Ok(Transcoded::Unchanged),
        Plan::RewriteFooter => Ok(Transcoded::Footer(reseal(payload, target))),
        Plan::Reencode => {
            let limits = Limits::for_payload(payload.len());
            let dump = decode_verified(payload.clone(), type_byte, version, limits)?;
            let encoded = encode_with(&dump.value, target, options)?;
            Ok(Transcoded::Reencoded(encoded))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;

    fn ttl_hash() -> Value {
        Value::Hash(vec![
            HashField {
                field: Bytes::from_static(b"a"),
                value: Bytes::from_static(b"1"),
                expires_ms: Some(4_102_444_800_000),
            },
            HashField::new("b", "2"),
            HashField {
                field: Bytes::from_static(b"c"),
                value: Bytes::from_static(b"3"),
                expires_ms: Some(4_102_444_800_005),
            },
        ])
    }

    #[test]
    fn field_ttls_by_target_line() {
        let v = ttl_hash();
        for (target, type_byte) in [(12, HASH_METADATA), (13, HASH_METADATA), (80, HASH_2)] {
            let payload = encode(&v, target).expect("encodable");
            let dump = decode(&payload).expect("decodes");
            assert_eq!(dump.type_byte, type_byte);
            assert_eq!(dump.version, target);
            assert_eq!(dump.value, v);
        }
        for target in [9, 10, 11] {
            assert_eq!(
                encode(&v, target),
                Err(Error::FieldTtlUnsupported { target })
            );
            let options = EncodeOptions {
                drop_field_ttl: true,
            };
            let payload = encode_with(&v, target, &options).expect("dropped");
            let Value::Hash(fields) = decode(&payload).expect("decodes").value else {
                panic!("not a hash");
            };
            assert!(fields.iter().all(|f| f.expires_ms.is_none()));
            assert_eq!(fields.len(), 3);
        }
    }

    #[test]
    fn kinds_a_target_cannot_hold() {
        let s = Value::Stream(Box::default());
        assert_eq!(
            encode(&s, 8),
            Err(Error::KindUnsupported {
                kind: "stream",
                target: 8,
                needs: 9
            })
        );
        let nan = Value::SortedSet(vec![(Bytes::from_static(b"m"), f64::NAN)]);
        assert!(matches!(encode(&nan, 10), Err(Error::InvalidValue { .. })));
    }

    #[test]
    fn text_scores_before_rdb_8() {
        let z = Value::SortedSet(vec![
            (Bytes::from_static(b"a"), 0.1),
            (Bytes::from_static(b"b"), f64::NEG_INFINITY),
        ]);
        let dump = decode(&encode(&z, 7).expect("encodes")).expect("decodes");
        assert_eq!(dump.type_byte, ZSET);
        assert_eq!(dump.value, z);
    }

    #[test]
    fn transcode_takes_the_cheapest_path() {
        let string =
            &Bytes::from_static(include_bytes!("../tests/fixtures/valkey-9.1/str_raw.dump"));
        let set = &Bytes::from_static(include_bytes!(
            "../tests/fixtures/valkey-8.1/set_small.dump"
        ));
        let opts = EncodeOptions::default();
        assert_eq!(transcode(string, 80, &opts), Ok(Transcoded::Unchanged));
        let Ok(Transcoded::Footer(p)) = transcode(string, 10, &opts) else {
            panic!("a string needs only a new footer");
        };
        assert_eq!(verify(&p), Ok((STRING, 10)));
        let Ok(Transcoded::Reencoded(p)) = transcode(set, 10, &opts) else {
            panic!("a listpack set must be re-encoded for 7.0");
        };
        assert_eq!(verify(&p), Ok((SET, 10)));
        assert_eq!(
            decode(&p).expect("decodes").value,
            decode(set).expect("decodes").value
        );
    }
}
