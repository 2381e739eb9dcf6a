//! The value model: what a key holds, independent of how a server encoded it.
//!
//! Two payloads that restore to the same content decode to equal values,
//! whatever their encodings: a list from a ziplist, a quicklist or a
//! linked list is the same `Value::List`; an integer element from an intset
//! or a listpack is its decimal string. Order is the payload's order
//! (sets and hashes have none on the server, so only content matters
//! there, but keeping the order makes `decode ∘ encode` the identity).
//!
//! Byte strings are [`Bytes`]: slices of the payload where the payload holds
//! them verbatim, so decoding a large collection does not allocate per
//! element.
//!
//! What the model leaves out, on purpose: stream entries marked deleted
//! inside a listpack (invisible to every command; `max_deleted_id` keeps
//! what they mean for consumer-group lag), and how a server laid a value
//! out (node sizes, compression), which the target chooses again on load.

use bytes::Bytes;

/// A decoded DUMP payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Dump {
    /// The payload's type byte (how the value was encoded).
    pub type_byte: u8,
    /// The RDB version in the payload's footer.
    pub version: u16,
    /// The value.
    pub value: Value,
}

/// The content of one key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (HyperLogLogs are strings too).
    String(Bytes),
    /// A list, head first.
    List(Vec<Bytes>),
    /// A set's members.
    Set(Vec<Bytes>),
    /// A sorted set's members and scores. Scores are never NaN.
    SortedSet(Vec<(Bytes, f64)>),
    /// A hash's fields, each with its TTL if it has one.
    Hash(Vec<HashField>),
    /// A stream with its consumer groups.
    Stream(Box<Stream>),
    /// A module's value, carried opaque: only the module can read it.
    Module(Module),
}

impl Value {
    /// The kind's name as `TYPE` replies it, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::SortedSet(_) => "zset",
            Value::Hash(_) => "hash",
            Value::Stream(_) => "stream",
            Value::Module(_) => "module",
        }
    }

    /// True if this is a hash and some field has a TTL.
    pub fn has_field_ttl(&self) -> bool {
        matches!(self, Value::Hash(fields) if fields.iter().any(|f| f.expires_ms.is_some()))
    }
}

/// One field of a hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashField {
    /// The field name.
    pub field: Bytes,
    /// Its value.
    pub value: Bytes,
    /// When the field expires, in Unix milliseconds; `None`: it does not.
    pub expires_ms: Option<u64>,
}

impl HashField {
    /// A field without a TTL.
    pub fn new(field: impl Into<Bytes>, value: impl Into<Bytes>) -> HashField {
        HashField {
            field: field.into(),
            value: value.into(),
            expires_ms: None,
        }
    }
}

/// A stream entry ID, `ms-seq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The ID `ms-seq`.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// `18446744073709551615-18446744073709551615`: what Redis records as
    /// the first ID of a stream with no entries.
    pub const MAX: StreamId = StreamId::new(u64::MAX, u64::MAX);
}

/// A stream: its entries and the metadata `XINFO STREAM` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    /// The entries, in ID order.
    pub entries: Vec<StreamEntry>,
    /// The ID of the last entry ever added (`last-generated-id`).
    pub last_id: StreamId,
    /// The first entry's ID (`recorded-first-entry-id`).
    pub first_id: StreamId,
    /// The largest ID ever deleted (`max-deleted-entry-id`).
    pub max_deleted_id: StreamId,
    /// Entries ever added (`entries-added`).
    pub entries_added: u64,
    /// The consumer groups.
    pub groups: Vec<ConsumerGroup>,
}

/// One stream entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// Its ID.
    pub id: StreamId,
    /// Its field-value pairs, in order.
    pub fields: Vec<(Bytes, Bytes)>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// The group's name.
    pub name: Bytes,
    /// The last ID delivered to the group (`last-delivered-id`).
    pub last_id: StreamId,
    /// Entries the group has read (`entries-read`); `None` when the server
    /// does not know (a group from before Redis 7.0, or after some
    /// deletions), which makes its lag unknown too.
    pub entries_read: Option<u64>,
    /// The group's pending entries list, in ID order.
    pub pending: Vec<PendingEntry>,
    /// The group's consumers.
    pub consumers: Vec<Consumer>,
}

/// An entry delivered to a consumer and not yet acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry's ID.
    pub id: StreamId,
    /// When it was last delivered, in Unix milliseconds.
    pub delivery_time_ms: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// The consumer's name.
    pub name: Bytes,
    /// When it last interacted, in Unix milliseconds (`seen-time`).
    pub seen_time_ms: u64,
    /// When it last read or claimed, in Unix milliseconds (`active-time`,
    /// Redis 7.2+); older payloads do not record it and it reads as the
    /// seen time, as the server itself does.
    pub active_time_ms: u64,
    /// The IDs of the group's pending entries it owns.
    pub pending: Vec<StreamId>,
}

/// A module value, opaque.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The module type ID: a 9-character name and a 10-bit encoding
    /// version (see [`Module::name`]).
    pub type_id: u64,
    /// The serialized value after the ID, as the module wrote it
    /// (including the end marker for type 7).
    pub body: Bytes,
    /// Type 7 (`MODULE_2`): self-describing opcodes a reader can walk
    /// without the module. `false`: the 4.0 release-candidate type 6, which
    /// no released server loads.
    pub annotated: bool,
}

impl Module {
    /// The module type's 9-character name, from the ID's top 54 bits
    /// (6 bits per character, as `moduleTypeNameByID` decodes it).
    pub fn name(&self) -> String {
        const CHARSET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut id = self.type_id >> 10;
        let mut name = [0u8; 9];
        for slot in name.iter_mut().rev() {
            *slot = CHARSET[(id & 63) as usize];
            id >>= 6;
        }
        String::from_utf8_lossy(&name).into_owned()
    }

    /// The encoding version in the ID's low 10 bits.
    pub fn encoding_version(&self) -> u16 {
        (self.type_id & 1023) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_id_splits_into_name_and_version() {
        // "ReJSON-RL" encoding version 3, as RedisJSON registers it.
        let mut id = 0u64;
        let charset = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for c in b"ReJSON-RL" {
            let pos = charset.iter().position(|x| x == c).expect("in charset") as u64;
            id = (id << 6) | pos;
        }
        let module = Module {
            type_id: (id << 10) | 3,
            body: Bytes::new(),
            annotated: true,
        };
        assert_eq!(module.name(), "ReJSON-RL");
        assert_eq!(module.encoding_version(), 3);
    }

    #[test]
    fn field_ttl_is_detected_only_on_hashes_that_have_one() {
        let mut fields = vec![HashField::new("a", "1")];
        assert!(!Value::Hash(fields.clone()).has_field_ttl());
        fields[0].expires_ms = Some(1);
        assert!(Value::Hash(fields).has_field_ttl());
        assert!(!Value::String(Bytes::new()).has_field_ttl());
    }
}
