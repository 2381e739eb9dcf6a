//! `decode ∘ encode` is the identity on the value model (proptest): any
//! value, encoded for each target version, decodes back to itself, less
//! exactly what that version's layouts cannot hold
//! (`rdb::fuzzing::projected`, the same check the fuzz target runs).

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use rdb::{
    fuzzing, Consumer, ConsumerGroup, HashField, Module, PendingEntry, Stream, StreamEntry,
    StreamId, Value,
};

/// Byte strings, often integers (which take the integer encodings, and
/// must read back as the same bytes), often empty or long.
fn bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..24),
        2 => any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        1 => (-200i64..200).prop_map(|n| n.to_string().into_bytes()),
        1 => Just(b"-0".to_vec()),
        1 => Just(b"007".to_vec()),
        1 => vec(any::<u8>(), 60..700),
    ]
    .prop_map(Bytes::from)
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        (-1000i32..1000).prop_map(f64::from),
    ]
}

fn hash_field() -> impl Strategy<Value = HashField> {
    (bytes(), bytes(), proptest::option::of(0u64..(1 << 48))).prop_map(
        |(field, value, expires_ms)| HashField {
            field,
            value,
            expires_ms,
        },
    )
}

fn id() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        (0u64..1000, 0u64..4).prop_map(|(ms, seq)| StreamId::new(ms, seq)),
        (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| StreamId::new(ms, seq)),
    ]
}

fn stream() -> impl Strategy<Value = Stream> {
    let names = prop_oneof![Just(vec![]), Just(vec!["f"]), Just(vec!["a", "b"])];
    let entry = (id(), names, vec(bytes(), 2)).prop_map(|(id, names, values)| StreamEntry {
        id,
        fields: names
            .iter()
            .zip(values)
            .map(|(n, v)| (Bytes::copy_from_slice(n.as_bytes()), v))
            .collect(),
    });
    let pending = (id(), any::<u64>(), any::<u64>()).prop_map(|(id, t, n)| PendingEntry {
        id,
        delivery_time_ms: t,
        delivery_count: n,
    });
    let consumer = (bytes(), any::<u64>(), any::<u64>(), vec(id(), 0..4)).prop_map(
        |(name, seen_time_ms, active_time_ms, pending)| Consumer {
            name,
            seen_time_ms,
            active_time_ms,
            pending,
        },
    );
    let group = (
        bytes(),
        id(),
        proptest::option::of(0u64..u64::MAX),
        vec(pending, 0..4),
        vec(consumer, 0..3),
    )
        .prop_map(
            |(name, last_id, entries_read, pending, consumers)| ConsumerGroup {
                name,
                last_id,
                entries_read,
                pending,
                consumers,
            },
        );
    (
        vec(entry, 0..120),
        id(),
        id(),
        id(),
        any::<u64>(),
        vec(group, 0..3),
    )
        .prop_map(
            |(entries, last_id, first_id, max_deleted_id, entries_added, groups)| Stream {
                entries,
                last_id,
                first_id,
                max_deleted_id,
                entries_added,
                groups,
            },
        )
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        bytes().prop_map(Value::String),
        vec(bytes(), 0..64).prop_map(Value::List),
        vec(bytes(), 0..64).prop_map(Value::Set),
        vec((bytes(), score()), 0..64).prop_map(Value::SortedSet),
        vec(hash_field(), 0..64).prop_map(Value::Hash),
        stream().prop_map(|s| Value::Stream(Box::new(s))),
        (any::<u64>(), vec(any::<u8>(), 0..64), any::<bool>()).prop_map(|(type_id, body, pre)| {
            // A type-7 body must be opcodes ending in EOF: one string, EOF.
            let body = if pre {
                body
            } else {
                let mut b = vec![5, body.len().min(63) as u8];
                b.extend_from_slice(&body[..body.len().min(63)]);
                b.push(0);
                b
            };
            Value::Module(Module {
                type_id,
                body: Bytes::from(body),
                annotated: !pre,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_of_encode_is_the_identity(v in value()) {
        fuzzing::check_roundtrip(&v);
    }
}
