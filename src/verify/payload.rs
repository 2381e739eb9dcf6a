//! What a comparison can tell from a `DUMP` payload without decoding it:
//! the body (the payload without its footer), and the value's type from its
//! first byte.
//!
//! A payload is `<type byte> <value> <RDB version: 2 bytes LE> <CRC64: 8
//! bytes>`. Two servers of different versions write the same value with
//! different footers, so equal bodies mean equal values whatever the
//! versions; different bodies mean nothing until the contents are compared
//! (a hashtable-encoded set or hash is serialised in its table's order,
//! which differs from server to server). Decoding the body is the `rdb`
//! crate's business, not this file's.

/// Bytes of the footer: the RDB version (2) and the CRC64 (8).
pub const FOOTER: usize = 10;

/// The payload without its footer (the whole payload when it is too short
/// to have one: such bytes are compared as they are).
pub fn body(payload: &[u8]) -> &[u8] {
    payload
        .len()
        .checked_sub(FOOTER)
        .map_or(payload, |n| &payload[..n])
}

/// A value's type, as `TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    List,
    Set,
    Zset,
    Hash,
    Stream,
    /// A module's value (RDB types 6 and 7).
    Module,
    /// A type byte rump does not know (a newer server's encoding): the
    /// server is asked with `TYPE`.
    Unknown(u8),
}

impl Kind {
    /// The type of the value `payload` holds, from its first byte (the RDB
    /// object type: `RDB_TYPE_*` in the Redis and Valkey sources, `rdb.h`).
    pub fn of_payload(payload: &[u8]) -> Kind {
        match payload.first() {
            Some(0) => Kind::String,
            Some(1 | 10 | 14 | 18) => Kind::List,
            Some(2 | 11 | 20) => Kind::Set,
            Some(3 | 5 | 12 | 17) => Kind::Zset,
            // 22-25: hashes with field expiry (Redis 7.4+).
            Some(4 | 9 | 13 | 16 | 22..=25) => Kind::Hash,
            Some(15 | 19 | 21) => Kind::Stream,
            Some(6 | 7) => Kind::Module,
            Some(&b) => Kind::Unknown(b),
            None => Kind::Unknown(0xff),
        }
    }

    /// The type a `TYPE` reply names (`none` and module names are
    /// [`Kind::Module`] unless they are a core type).
    pub fn of_type_reply(name: &[u8]) -> Kind {
        match name {
            b"string" => Kind::String,
            b"list" => Kind::List,
            b"set" => Kind::Set,
            b"zset" => Kind::Zset,
            b"hash" => Kind::Hash,
            b"stream" => Kind::Stream,
            _ => Kind::Module,
        }
    }

    /// The name `TYPE` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::Hash => "hash",
            Kind::Stream => "stream",
            Kind::Module => "module",
            Kind::Unknown(_) => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_leaves_out_version_and_checksum() {
        // Redis 7.0 (RDB 10) and Valkey 8.1 (RDB 11) write "hello" alike.
        let redis = b"\x00\x05hello\x0a\x00cr\xdfve4 \n";
        let valkey = b"\x00\x05hello\x0b\x00\n\xadb\x05\x98\xab\xc9\x83";
        assert_ne!(&redis[..], &valkey[..]);
        assert_eq!(body(redis), body(valkey));
        assert_eq!(body(redis), b"\x00\x05hello");
        assert_eq!(body(b"short"), b"short");
    }

    #[test]
    fn type_bytes_name_the_type() {
        assert_eq!(Kind::of_payload(b"\x00\x05hello"), Kind::String);
        assert_eq!(Kind::of_payload(&[18]), Kind::List);
        // Redis 7.0 writes a small set as a hashtable (2), Valkey 8.1 as a
        // listpack (20): the same type.
        assert_eq!(Kind::of_payload(&[2]), Kind::of_payload(&[20]));
        assert_eq!(Kind::of_payload(&[11]), Kind::Set);
        assert_eq!(Kind::of_payload(&[17]), Kind::Zset);
        assert_eq!(Kind::of_payload(&[16]), Kind::Hash);
        assert_eq!(Kind::of_payload(&[19]), Kind::of_payload(&[21]));
        assert_eq!(Kind::of_payload(&[7]), Kind::Module);
        assert_eq!(Kind::of_payload(&[99]), Kind::Unknown(99));
        assert_eq!(Kind::of_payload(&[]), Kind::Unknown(0xff));
        assert_eq!(Kind::of_type_reply(b"zset"), Kind::Zset);
        assert_eq!(Kind::of_type_reply(b"ReJSON-RL"), Kind::Module);
        assert_eq!(Kind::Stream.name(), "stream");
    }
}
