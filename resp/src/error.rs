//! The crate's error type: everything that makes a byte stream not RESP2.
//!
//! "Not enough bytes yet" is deliberately absent: the decoder reports it as
//! `Ok(None)`. Every variant here means the stream is broken and the connection
//! should be closed; offsets count from the start of the buffer passed to the
//! decoder.

use std::fmt;

/// Why a byte stream is not valid RESP2, or breaks a configured limit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The first byte of a frame is not one of `+ - : $ *`.
    InvalidTypeByte {
        /// The byte found.
        byte: u8,
        /// Where it was found.
        offset: usize,
    },
    /// A `$` or `*` length is not a decimal integer, or is below `-1`.
    InvalidLength {
        /// Where the length line starts.
        offset: usize,
    },
    /// A `:` line is not a decimal integer that fits in an `i64`.
    InvalidInteger {
        /// Where the integer line starts.
        offset: usize,
    },
    /// A CR not followed by LF, or a bulk payload not followed by CRLF.
    MissingCrlf {
        /// Where the CRLF was expected.
        offset: usize,
    },
    /// A bulk string longer than [`Limits::max_bulk_len`](crate::Limits).
    BulkTooLarge {
        /// The announced length.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// An array with more elements than [`Limits::max_array_len`](crate::Limits).
    ArrayTooLarge {
        /// The announced element count.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// Arrays nested deeper than [`Limits::max_depth`](crate::Limits).
    DepthExceeded {
        /// The configured limit.
        limit: usize,
    },
    /// A simple, error or integer line longer than
    /// [`Limits::max_line_len`](crate::Limits) without its CRLF.
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A frame longer than [`Limits::max_frame_bytes`](crate::Limits), found
    /// complete or proved so while still incomplete.
    FrameTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A frame whose arrays hold more elements in all than
    /// [`Limits::max_elements`](crate::Limits).
    TooManyElements {
        /// The configured limit.
        limit: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidTypeByte { byte, offset } => {
                write!(f, "invalid type byte {byte:#04x} at offset {offset}")
            }
            Error::InvalidLength { offset } => write!(f, "invalid length at offset {offset}"),
            Error::InvalidInteger { offset } => write!(f, "invalid integer at offset {offset}"),
            Error::MissingCrlf { offset } => write!(f, "missing CRLF at offset {offset}"),
            Error::BulkTooLarge { len, limit } => {
                write!(f, "bulk length {len} exceeds limit {limit}")
            }
            Error::ArrayTooLarge { len, limit } => {
                write!(f, "array length {len} exceeds limit {limit}")
            }
            Error::DepthExceeded { limit } => write!(f, "arrays nested deeper than limit {limit}"),
            Error::LineTooLong { limit } => write!(f, "line longer than limit {limit}"),
            Error::FrameTooLarge { limit } => write!(f, "frame longer than limit {limit} bytes"),
            Error::TooManyElements { limit } => {
                write!(f, "frame holds more elements than limit {limit}")
            }
        }
    }
}

impl std::error::Error for Error {}
