//! A sans-IO decoder and encoder of Redis and Valkey `DUMP` payloads, so a
//! value dumped by a newer server can be restored into an older one.
//!
//! Every payload ends with the RDB version of the server that made it, and
//! `RESTORE` refuses versions newer than its own. This crate gives the three
//! ways out, cheapest first ([`plan`] picks one):
//!
//! - the payload's type exists on the target: [`rewrite_footer`] changes
//!   only the version and the CRC;
//! - it does not: [`decode`] it into a [`Value`] and [`encode`] that for
//!   the target, in plain encodings every server loads;
//! - the target cannot hold it (field TTLs before Redis 7.4 / Valkey 9,
//!   streams before 5.0): [`Error::FieldTtlUnsupported`] and friends say so.
//!
//! [`transcode`] does all of it for one payload:
//!
//! ```
//! use bytes::Bytes;
//! use rdb::{decode, transcode, EncodeOptions, Transcoded, Value};
//!
//! // A set DUMPed by Valkey 8.1 (RDB 11, listpack set: type 20).
//! let payload = Bytes::from_static(include_bytes!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/tests/fixtures/valkey-8.1/set_small.dump"
//! )));
//! // Redis 7.0 (RDB 10) has no listpack sets: the set is re-encoded (type 2).
//! let Transcoded::Reencoded(for_7_0) = transcode(&payload, 10, &EncodeOptions::default())? else {
//!     unreachable!("type 20 is unknown to RDB 10");
//! };
//! let dump = decode(&for_7_0)?;
//! assert_eq!((dump.type_byte, dump.version), (2, 10));
//! assert_eq!(dump.value, Value::Set(vec!["a".into(), "b".into(), "c".into()]));
//! # Ok::<(), rdb::Error>(())
//! ```
//!
//! # Payload
//!
//! `[type u8][object][RDB version u16 LE][CRC-64/Jones u64 LE]`, the CRC
//! over everything before it ([`crc64`]).
//!
//! # Hostile input
//!
//! Decoding never panics and never allocates beyond [`Limits::max_alloc`]:
//! every length is checked against the bytes left before it sizes anything,
//! LZF output is bounded by its declared length and by what LZF can expand
//! to, and the value's memory is charged to a budget as it is built. The
//! crate has no `unsafe`. A cargo-fuzz target checks all of it
//! ([`fuzzing`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blob;
pub mod crc64;
mod decode;
mod encode;
mod error;
mod footer;
#[doc(hidden)]
pub mod fuzzing;
mod intset;
mod limits;
mod listpack;
mod lzf;
mod reader;
mod stream;
mod value;
mod version;
mod writer;
mod ziplist;
mod zipmap;

pub use decode::{decode, decode_bytes, decode_with};
pub use encode::{encode, encode_with, transcode, EncodeOptions, Transcoded};
pub use error::Error;
pub use footer::{payload_version, rewrite_footer, verify};
pub use limits::{Limits, ALLOC_PER_PAYLOAD_BYTE, MAX_ALLOC, MAX_STRING_LEN, MIN_ALLOC};
pub use value::{
    Consumer, ConsumerGroup, Dump, HashField, Module, PendingEntry, Stream, StreamEntry, StreamId,
    Value,
};
pub use version::{
    min_version_for_type, plan, rdb_version_for, type_supported, types, version_accepted, Plan,
    ServerLine, FIRST_VALKEY_VERSION, LAST_COMMON_VERSION, OLDEST_DUMP_VERSION,
};
