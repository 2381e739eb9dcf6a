//! The [`Frame`] type: one decoded RESP2 value.
//!
//! Payloads are [`Bytes`], not `String`: Redis keys and values are binary, and a
//! `Bytes` slice of the read buffer costs no copy. Integers are `i64` because
//! replies such as `PTTL` are negative (`-1` no expiry, `-2` no key).

use bytes::Bytes;

/// One RESP2 value, as a server sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Frame {
    /// `+OK`: a status line; never contains CR or LF.
    Simple(Bytes),
    /// `-ERR message`: an error reply; never contains CR or LF.
    Error(Bytes),
    /// `:42`: a signed 64-bit integer.
    Integer(i64),
    /// `$3\r\nfoo`: a binary-safe string.
    Bulk(Bytes),
    /// `$-1`: the null bulk string (e.g. `GET` or `DUMP` of a missing key).
    Null,
    /// `*-1`: the null array (e.g. a `BLPOP` that timed out).
    NullArray,
    /// `*N`: an array of frames, possibly empty or nested.
    Array(Vec<Frame>),
}

impl Frame {
    /// The payload of a bulk string, or `None` for any other frame.
    pub fn as_bulk(&self) -> Option<&Bytes> {
        match self {
            Frame::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The value of an integer frame, or `None` for any other frame.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Frame::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array frame, or `Err(self)` for any other frame.
    ///
    /// # Errors
    ///
    /// Returns the frame unchanged when it is not an [`Frame::Array`].
    pub fn into_array(self) -> Result<Vec<Frame>, Frame> {
        match self {
            Frame::Array(items) => Ok(items),
            other => Err(other),
        }
    }

    /// The message of an error reply, or `None` for any other frame.
    pub fn as_error(&self) -> Option<&Bytes> {
        match self {
            Frame::Error(e) => Some(e),
            _ => None,
        }
    }

    /// True for [`Frame::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}
