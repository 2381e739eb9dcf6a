//! The crate's error type: why a payload cannot be decoded, or a value cannot
//! be written for a target version.
//!
//! Offsets count from the start of the payload. Inside an encoded blob
//! (listpack, ziplist, intset, zipmap, stream listpack) the offset is where
//! the blob's string starts in the payload, since the blob may have been
//! LZF-compressed and has no position of its own there.

use std::fmt;

/// Why a DUMP payload is not valid, breaks a limit, or cannot be written for
/// the requested target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than the 10-byte footer (version and CRC) plus a type byte.
    TooShort {
        /// The payload's length.
        len: usize,
    },
    /// The CRC-64 in the footer does not match the bytes before it.
    Checksum {
        /// The CRC the footer holds.
        stored: u64,
        /// The CRC of the bytes before it.
        computed: u64,
    },
    /// A type byte no Redis or Valkey version defines (for this payload's
    /// RDB version).
    UnknownType {
        /// The type byte.
        type_byte: u8,
        /// The payload's RDB version.
        version: u16,
    },
    /// A type byte this crate knows of but cannot decode.
    UnsupportedType {
        /// The type byte.
        type_byte: u8,
        /// What it is.
        what: &'static str,
    },
    /// The payload ends inside a field.
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A field holds a value no server writes.
    Corrupt {
        /// Where the field (or its blob) starts.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The object ends before the footer: bytes are left over.
    TrailingBytes {
        /// Where the object ended.
        offset: usize,
    },
    /// A length or count above a configured limit.
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The length or count found.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Decoding would allocate more than [`Limits::max_alloc`](crate::Limits).
    Budget {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The value has per-field TTLs and the target's RDB version has no
    /// encoding for them (Redis before 7.4, Valkey before 9.0).
    FieldTtlUnsupported {
        /// The target RDB version.
        target: u16,
    },
    /// The target's RDB version has no encoding for this kind of value.
    KindUnsupported {
        /// The kind of value.
        kind: &'static str,
        /// The target RDB version.
        target: u16,
        /// The lowest RDB version that has one.
        needs: u16,
    },
    /// The value cannot be written in any RDB version.
    InvalidValue {
        /// What is wrong with it.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort { len } => write!(
                f,
                "payload of {len} bytes is shorter than a type byte and the 10-byte footer"
            ),
            Error::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch: the footer holds {stored:#018x}, the payload hashes to {computed:#018x}"
            ),
            Error::UnknownType { type_byte, version } => {
                write!(f, "unknown type byte {type_byte} in an RDB version {version} payload")
            }
            Error::UnsupportedType { type_byte, what } => {
                write!(f, "type byte {type_byte} ({what}) cannot be decoded")
            }
            Error::Truncated { offset, what } => {
                write!(f, "payload ends inside the {what} at offset {offset}")
            }
            Error::Corrupt { offset, what } => write!(f, "invalid {what} at offset {offset}"),
            Error::TrailingBytes { offset } => {
                write!(f, "the value ends at offset {offset}, before the footer")
            }
            Error::TooLarge { what, len, limit } => {
                write!(f, "{what} {len} exceeds limit {limit}")
            }
            Error::Budget { limit } => {
                write!(f, "decoding needs more than the {limit}-byte memory budget")
            }
            Error::FieldTtlUnsupported { target } => write!(
                f,
                "hash has per-field TTLs, which RDB version {target} cannot hold (use --drop-field-ttl to copy it without them)"
            ),
            Error::KindUnsupported { kind, target, needs } => write!(
                f,
                "a {kind} cannot be written for RDB version {target} (needs {needs} or later)"
            ),
            Error::InvalidValue { what } => write!(f, "cannot encode the value: {what}"),
        }
    }
}

impl std::error::Error for Error {}
