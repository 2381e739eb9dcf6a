//! The [`Frame`] type: one decoded RESP2 value.
//!
//! Payloads are [`Bytes`], not `String`: Redis keys and values are binary, and a
//! `Bytes` slice of the read buffer costs no copy. Integers are `i64` because
//! replies such as `PTTL` are negative (`-1` no expiry, `-2` no key).

use bytes::Bytes;

/// One RESP2 value, as a server sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Structured fuzzing input (`fuzz/`'s `roundtrip` target). Hand-written
/// because `Bytes` has no `Arbitrary` impl, and so that generated frames obey
/// the invariants the variants document: no CR or LF in `Simple`/`Error`, and
/// nesting no deeper than [`MAX_DEPTH`](crate::MAX_DEPTH), so the harness never
/// recurses without bound.
#[cfg(any(test, feature = "arbitrary"))]
impl<'a> arbitrary::Arbitrary<'a> for Frame {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        arbitrary_frame(u, 0)
    }
}

#[cfg(any(test, feature = "arbitrary"))]
fn arbitrary_frame(u: &mut arbitrary::Unstructured<'_>, depth: usize) -> arbitrary::Result<Frame> {
    let line = |u: &mut arbitrary::Unstructured<'_>| -> arbitrary::Result<Bytes> {
        let raw: &[u8] = u.arbitrary()?;
        Ok(raw
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect())
    };
    let kinds = if depth < crate::MAX_DEPTH { 7 } else { 6 };
    Ok(match u.choose_index(kinds)? {
        0 => Frame::Simple(line(u)?),
        1 => Frame::Error(line(u)?),
        2 => Frame::Integer(u.arbitrary()?),
        3 => Frame::Bulk(Bytes::copy_from_slice(u.arbitrary()?)),
        4 => Frame::Null,
        5 => Frame::NullArray,
        _ => {
            let len = u.arbitrary_len::<u8>()?;
            let mut items = Vec::with_capacity(len.min(64));
            for _ in 0..len {
                if u.is_empty() {
                    break;
                }
                items.push(arbitrary_frame(u, depth + 1)?);
            }
            Frame::Array(items)
        }
    })
}
