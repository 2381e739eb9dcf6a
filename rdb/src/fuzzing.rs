//! The fuzz harness, here rather than in `fuzz/` so the unit tests replay
//! the committed corpus through the very same checks.
//!
//! Not a stable API.

use bytes::Bytes;

use crate::footer::seal;
use crate::{decode_with, encode_with, EncodeOptions, Error, Limits, StreamId, Value};

/// Tight limits, so a fuzz input that claims a huge value costs little.
const FUZZ_LIMITS: Limits = Limits {
    max_string_len: 1 << 20,
    max_alloc: 16 << 20,
};

/// Targets every decoded value is re-encoded for: text scores (7), the
/// first stream layout (9), the second (10), Redis 7.4 (12), Valkey 9 (80).
const TARGETS: [u16; 5] = [7, 9, 10, 12, 80];

/// `data` as a payload body (type byte, object, version): decoded with a
/// valid CRC appended, and as it is. Neither may panic. Whatever decodes is
/// encoded for RDB 7, 9, 10, 12 and 80 where it fits, and must decode back to the
/// same value as the target sees it ([`projected`]).
pub fn fuzz_decode(data: &[u8]) {
    let _ = decode_with(Bytes::copy_from_slice(data), FUZZ_LIMITS);
    let mut sealed = data.to_vec();
    if sealed.len() >= 2 {
        // The input's last two bytes are the version; seal() appends its own.
        let version = u16::from_le_bytes([sealed[sealed.len() - 2], sealed[sealed.len() - 1]]);
        sealed.truncate(sealed.len() - 2);
        seal(&mut sealed, version);
    }
    if let Ok(dump) = decode_with(Bytes::from(sealed), FUZZ_LIMITS) {
        check_roundtrip(&dump.value);
    }
}

/// Encodes `value` for every target and checks that it decodes back to
/// what that target can hold of it.
pub fn check_roundtrip(value: &Value) {
    for target in TARGETS {
        for drop_field_ttl in [false, true] {
            let options = EncodeOptions { drop_field_ttl };
            let payload = match encode_with(value, target, &options) {
                Ok(p) => p,
                Err(Error::FieldTtlUnsupported { .. })
                | Err(Error::KindUnsupported { .. })
                | Err(Error::InvalidValue { .. }) => continue,
                Err(e) => panic!("encoding for {target} failed: {e}"),
            };
            let limits = Limits::for_payload(payload.len());
            let back = decode_with(Bytes::from(payload), limits)
                .unwrap_or_else(|e| panic!("re-decoding for {target} failed: {e}"));
            assert_eq!(back.version, target);
            assert_eq!(
                back.value,
                projected(value, target, drop_field_ttl),
                "target {target}, drop_field_ttl {drop_field_ttl}"
            );
        }
    }
}

/// What of `value` survives encoding for RDB version `target`: what the
/// target's layouts cannot hold reads back as the server fills it in.
///
/// - Streams at 9 (type 15): no first ID, max deleted ID, entries added or
///   group entries read; at 9 and 10 (type 19) no consumer active time.
/// - Hashes before 12 with `drop_field_ttl`: no field TTLs.
pub fn projected(value: &Value, target: u16, drop_field_ttl: bool) -> Value {
    let mut v = value.clone();
    match &mut v {
        Value::Stream(s) => {
            if target < 10 {
                s.first_id = s.entries.first().map_or(StreamId::MAX, |e| e.id);
                s.max_deleted_id = StreamId::default();
                s.entries_added = s.entries.len() as u64;
            }
            for g in &mut s.groups {
                if target < 10 {
                    g.entries_read = None;
                }
                if target < 11 {
                    for c in &mut g.consumers {
                        c.active_time_ms = c.seen_time_ms;
                    }
                }
            }
        }
        Value::Hash(fields) if drop_field_ttl && target < 12 => {
            for f in fields {
                f.expires_ms = None;
            }
        }
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every committed seed of `fuzz/corpus/rdb_decode/` (and whatever a
    /// local run grew there) replays through the harness.
    #[test]
    fn corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rdb_decode");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 10, "too few seeds in {}", dir.display());
        for path in files {
            let data = std::fs::read(&path).expect("corpus file");
            fuzz_decode(&data);
        }
    }

    /// The seeds are real payloads minus their CRC, so the fuzzer starts
    /// from every type: check that each still decodes once sealed.
    #[test]
    fn seeds_decode_once_sealed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rdb_decode");
        for entry in std::fs::read_dir(&dir).expect("corpus dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if !name.is_some_and(|n| n.starts_with("seed-")) {
                continue;
            }
            let mut data = std::fs::read(&path).expect("seed");
            let version = u16::from_le_bytes([data[data.len() - 2], data[data.len() - 1]]);
            data.truncate(data.len() - 2);
            seal(&mut data, version);
            if let Err(e) = decode_with(Bytes::from(data), FUZZ_LIMITS) {
                panic!("{}: {e}", path.display());
            }
        }
    }
}
