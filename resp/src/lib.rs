//! A zero-copy, incremental RESP2 decoder and command encoder over [`bytes`].
//!
//! This crate is sans-IO: it owns no sockets, threads or event loops. Callers read
//! bytes into a [`BytesMut`](bytes::BytesMut), hand it to a [`Decoder`], and get
//! whole [`Frame`]s back; to send, they build commands in a [`Requests`] queue and
//! write its chunks (as one buffer or as [`std::io::IoSlice`]s).
//!
//! # Grammar (RESP2)
//!
//! | first byte | frame | example |
//! | --- | --- | --- |
//! | `+` | [`Frame::Simple`] | `+OK\r\n` |
//! | `-` | [`Frame::Error`] | `-ERR unknown command\r\n` |
//! | `:` | [`Frame::Integer`] | `:-2\r\n` |
//! | `$` | [`Frame::Bulk`], or [`Frame::Null`] for `$-1` | `$3\r\nfoo\r\n` |
//! | `*` | [`Frame::Array`], or [`Frame::NullArray`] for `*-1` | `*1\r\n:1\r\n` |
//!
//! # Incremental decoding
//!
//! [`Decoder::decode`] returns `Ok(None)` when the buffer does not yet hold a
//! whole frame; that is the normal "need more bytes" state, never an error, and
//! the buffer is left untouched. After an incomplete bulk header the decoder
//! remembers how many bytes the frame needs at least, so a 500 MiB payload that
//! arrives in 64 KiB reads is not rescanned on every read.
//!
//! What a peer can make the caller buffer is bounded per frame, not only per
//! value: [`Limits::max_frame_bytes`] and [`Limits::max_elements`] refuse a
//! pending frame as soon as it is known to break them, so an endless array of
//! tiny bulks is an error, not an ever-growing buffer. [`bulk_header`] lets a
//! caller skip a top-level bulk refused as too large.
//!
//! # Zero copy
//!
//! Bulk, simple and error payloads are [`Bytes`](bytes::Bytes) slices of the read
//! buffer (`split_to(n).freeze()` then `slice(a..b)`): no payload byte is copied
//! by decoding, and [`Command::shared`] (or [`Requests::arg_shared`]) sends such
//! a slice back out as its own chunk, so a `DUMP` payload can travel into a
//! `RESTORE` without being moved.
//!
//! # Building commands
//!
//! [`Requests::cmd`] is the way to queue a command: a [`Command`] builder
//! takes the arguments in order and [`Command::send`] writes the `*N` count
//! itself, so no call site can get it wrong. Each argument is encoded into
//! the queue as it is added and the count filled in at the end, so building
//! a command allocates nothing, however many arguments it has.
//!
//! ```
//! use bytes::BytesMut;
//! use resp::{Decoder, Frame, Requests};
//!
//! let mut decoder = Decoder::new();
//! let mut buf = BytesMut::from(&b"$5\r\nhel"[..]);
//! assert_eq!(decoder.decode(&mut buf).unwrap(), None); // incomplete: wait for more
//! buf.extend_from_slice(b"lo\r\n:-2\r\n");
//! assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Frame::Bulk("hello".into())));
//! assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Frame::Integer(-2)));
//!
//! let mut out = Requests::new();
//! out.cmd().arg(b"GET").arg(b"key").send();
//! assert_eq!(&out.to_bytes()[..], b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
//!
//! let ttl = 60_000;
//! let payload = bytes::Bytes::from(vec![0u8; 4096]); // a DUMP reply's payload
//! let mut c = out.cmd().arg(b"RESTORE").arg(b"key").int(ttl).shared(payload);
//! let replace = true;
//! if replace {
//!     c = c.arg(b"REPLACE");
//! }
//! c.send(); // *5, counted
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod command;
mod decode;
mod encode;
mod error;
mod frame;
mod limits;

#[doc(hidden)]
pub mod fuzzing;

pub use command::Command;
pub use decode::{bulk_header, Decoder};
pub use encode::{encode, encoded_len, write_int, Requests, DEFAULT_INLINE_MAX, IOV_MAX};
pub use error::Error;
pub use frame::Frame;
pub use limits::{
    Limits, MAX_ARRAY_LEN, MAX_BULK_LEN, MAX_DEPTH, MAX_DEPTH_HARD, MAX_ELEMENTS, MAX_FRAME_BYTES,
    MAX_LINE_LEN,
};
