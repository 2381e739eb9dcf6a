//! `--drop-field-ttl` without bringing fields back to life.
//!
//! A server reclaims a hash field whose TTL has passed only when something
//! touches it (or its active expiry gets there): until then `DUMP` still
//! holds it, with its TTL in the past, while `HGETALL` no longer shows it.
//! Dropping the field TTLs of such a payload as they are would make the
//! field persistent on the target: deleted data back, forever. So the
//! fields that have expired by the time of sending are dropped first, and
//! a hash left with none is gone, as it is on the source.

use bytes::Bytes;
use rdb::types::{HASH_2, HASH_LISTPACK_EX, HASH_LISTPACK_EX_PRE_GA, HASH_METADATA};
use rdb::{EncodeOptions, Value};

/// What is left of a hash with field TTLs to send without them.
#[derive(Debug, PartialEq, Eq)]
pub enum Live {
    /// The payload for the target: the live fields, without their TTLs.
    Payload(Bytes),
    /// Every field had expired: the key is gone.
    Gone,
}

/// True when RDB `target` has no hash type with field TTLs (Valkey before
/// 9, Redis before 7.4): there `--drop-field-ttl` drops them.
pub fn target_lacks_field_ttls(target: u16) -> bool {
    !rdb::type_supported(HASH_2, target) && !rdb::type_supported(HASH_METADATA, target)
}

/// `None` when `payload` is not a hash whose fields may carry TTLs (it is
/// rewritten as any other); otherwise its fields live at `now_ms`, encoded
/// for RDB `target` with `options` (which drop the TTLs).
pub fn live_fields(
    payload: &Bytes,
    target: u16,
    options: &EncodeOptions,
    now_ms: u64,
) -> Option<Result<Live, rdb::Error>> {
    let type_byte = *payload.first()?;
    let with_ttls = [
        HASH_2,
        HASH_LISTPACK_EX_PRE_GA,
        HASH_METADATA,
        HASH_LISTPACK_EX,
    ];
    if !with_ttls.contains(&type_byte) {
        return None;
    }
    Some(
        rdb::decode_bytes(payload.clone()).and_then(|dump| match dump.value {
            Value::Hash(mut fields) => {
                fields.retain(|f| f.expires_ms.map_or(true, |at| at > now_ms));
                if fields.is_empty() {
                    return Ok(Live::Gone);
                }
                let encoded = rdb::encode_with(&Value::Hash(fields), target, options)?;
                Ok(Live::Payload(Bytes::from(encoded)))
            }
            // Another meaning of the byte (Valkey 9.2's type 23): as any other.
            other => rdb::encode_with(&other, target, options).map(|p| Live::Payload(p.into())),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdb::HashField;

    fn field(name: &'static str, expires_ms: Option<u64>) -> HashField {
        HashField {
            field: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(b"v"),
            expires_ms,
        }
    }

    /// A Valkey 9 payload (RDB 80) of a hash with these fields.
    fn payload(fields: Vec<HashField>) -> Bytes {
        Bytes::from(rdb::encode(&Value::Hash(fields), 80).expect("encodes"))
    }

    fn drop_ttls() -> EncodeOptions {
        EncodeOptions {
            drop_field_ttl: true,
        }
    }

    #[test]
    fn expired_fields_are_dropped_and_the_rest_lose_their_ttls() {
        let hash = payload(vec![
            field("gone", Some(1_000)),
            field("kept", Some(5_000)),
            field("plain", None),
        ]);
        let Some(Ok(Live::Payload(out))) = live_fields(&hash, 10, &drop_ttls(), 2_000) else {
            panic!("a payload");
        };
        let dump = rdb::decode(&out).expect("decodes");
        assert_eq!(dump.version, 10);
        assert_eq!(
            dump.value,
            Value::Hash(vec![field("kept", None), field("plain", None)])
        );
    }

    #[test]
    fn a_hash_whose_every_field_expired_is_gone() {
        let hash = payload(vec![field("a", Some(1_000)), field("b", Some(2_000))]);
        assert_eq!(
            live_fields(&hash, 10, &drop_ttls(), 2_000),
            Some(Ok(Live::Gone))
        );
    }

    #[test]
    fn other_payloads_are_left_to_the_usual_rewrite() {
        let plain = payload(vec![field("a", None)]);
        assert_eq!(plain[0], rdb::types::HASH);
        assert_eq!(live_fields(&plain, 10, &drop_ttls(), 2_000), None);
        assert_eq!(live_fields(&Bytes::new(), 10, &drop_ttls(), 0), None);
    }
}
