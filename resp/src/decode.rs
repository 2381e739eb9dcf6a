//! The incremental decoder: bytes in a [`BytesMut`] to [`Frame`]s.
//!
//! Decoding is two-phase (as in mini-redis): [`scan`] proves a whole frame is
//! buffered and measures it without allocating; only then is the frame split off
//! the buffer and built, with every payload a [`Bytes`] slice of it. Arrays need
//! both phases; a top-level scalar frame (the common case on a pipelined
//! connection) is measured and built in one pass.
//!
//! This module does not own the buffer's growth or any I/O: callers append to the
//! buffer and call [`Decoder::decode`] until it returns `Ok(None)`.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;

use crate::{Error, Frame, Limits, MAX_DEPTH_HARD};

/// Decodes RESP2 frames from one byte stream.
///
/// A decoder belongs to one stream: it remembers, after an incomplete bulk, how
/// many bytes the pending frame needs at least, and skips work until the buffer
/// has grown that far. Call [`Decoder::reset`] before reusing it on another one.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    limits: Limits,
    /// The pending frame cannot be complete before the buffer holds this many
    /// bytes; 0 when nothing is known.
    need: usize,
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder { limits, need: 0 }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets what is known about a pending frame.
    pub fn reset(&mut self) {
        self.need = 0;
    }

    /// Decodes the next frame at the front of `buf`.
    ///
    /// Returns `Ok(Some(frame))` and removes the frame's bytes from `buf`, or
    /// `Ok(None)` when `buf` does not yet hold a whole frame (append more and call
    /// again). Payloads in the frame share `buf`'s memory.
    ///
    /// # Errors
    ///
    /// Any [`Error`] means the stream is not valid RESP2 or breaks a limit; `buf`
    /// is left untouched and the stream cannot be resynchronised.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if buf.len() < self.need.max(1) {
            return Ok(None);
        }
        let frame = match buf[0] {
            b'*' => return Ok(self.decode_raw(buf)?.map(|(frame, _)| frame)),
            b':' => {
                let Some(end) = self.line(buf, 1)? else {
                    return Ok(None);
                };
                let n = parse_int(&buf[1..end]).ok_or(Error::InvalidInteger { offset: 0 })?;
                buf.advance(end + 2);
                Frame::Integer(n)
            }
            b'+' | b'-' => {
                let Some(end) = self.line(buf, 1)? else {
                    return Ok(None);
                };
                let simple = buf[0] == b'+';
                let mut line = buf.split_to(end + 2);
                line.truncate(end);
                line.advance(1);
                let text = line.freeze();
                if simple {
                    Frame::Simple(text)
                } else {
                    Frame::Error(text)
                }
            }
            b'$' => {
                let Some(end) = self.line(buf, 1)? else {
                    return Ok(None);
                };
                let len = parse_len(&buf[1..end], 0)?;
                if len < 0 {
                    buf.advance(end + 2);
                    Frame::Null
                } else {
                    let len = self.check_bulk(len)?;
                    let start = end + 2;
                    let total = start + len + 2;
                    if buf.len() < total {
                        self.need = total;
                        return Ok(None);
                    }
                    check_crlf(buf, start + len)?;
                    buf.advance(start);
                    let payload = buf.split_to(len).freeze();
                    buf.advance(2);
                    Frame::Bulk(payload)
                }
            }
            byte => return Err(Error::InvalidTypeByte { byte, offset: 0 }),
        };
        self.need = 0;
        Ok(Some(frame))
    }

    /// Like [`Decoder::decode`], but also returns the frame's raw bytes, so a
    /// reply can be forwarded verbatim; the frame's payloads are slices of them.
    ///
    /// # Errors
    ///
    /// As for [`Decoder::decode`].
    pub fn decode_raw(&mut self, buf: &mut BytesMut) -> Result<Option<(Frame, Bytes)>, Error> {
        let Some(len) = self.frame_len(buf)? else {
            return Ok(None);
        };
        let raw = buf.split_to(len).freeze();
        let (frame, end) = build(&raw, 0);
        debug_assert_eq!(end, len, "build() agrees with scan()");
        Ok(Some((frame, raw)))
    }

    /// Measures the frame at the front of `buf` without building it: `Ok(Some(n))`
    /// when its `n` bytes are all there, `Ok(None)` when more are needed.
    ///
    /// # Errors
    ///
    /// As for [`Decoder::decode`].
    pub fn frame_len(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        if buf.len() < self.need.max(1) {
            return Ok(None);
        }
        let mut need = 0;
        match scan(&self.limits, buf, 0, 0, &mut need)? {
            Some(end) => {
                self.need = 0;
                Ok(Some(end))
            }
            None => {
                self.need = need;
                Ok(None)
            }
        }
    }

    /// Finds the CRLF of the line starting at `start`, recording `need` if absent.
    fn line(&mut self, buf: &[u8], start: usize) -> Result<Option<usize>, Error> {
        let mut need = 0;
        let found = find_crlf(&self.limits, buf, start, &mut need)?;
        if found.is_none() {
            self.need = need;
        }
        Ok(found)
    }

    fn check_bulk(&self, len: i64) -> Result<usize, Error> {
        let limit = self.limits.max_bulk_len;
        match usize::try_from(len) {
            Ok(n) if n <= limit => Ok(n),
            _ => Err(Error::BulkTooLarge { len: len as u64, limit }),
        }
    }
}

/// Returns the offset of the CR ending the line that starts at `start`.
///
/// `Ok(None)` sets `need`: the line is not yet terminated.
fn find_crlf(
    limits: &Limits,
    buf: &[u8],
    start: usize,
    need: &mut usize,
) -> Result<Option<usize>, Error> {
    let rest = buf.get(start..).unwrap_or_default();
    match memchr(b'\r', rest) {
        Some(i) => {
            if i > limits.max_line_len {
                return Err(Error::LineTooLong {
                    limit: limits.max_line_len,
                });
            }
            let cr = start + i;
            match buf.get(cr + 1) {
                None => {
                    *need = cr + 2;
                    Ok(None)
                }
                Some(b'\n') => Ok(Some(cr)),
                Some(_) => Err(Error::MissingCrlf { offset: cr }),
            }
        }
        None => {
            if rest.len() > limits.max_line_len {
                return Err(Error::LineTooLong {
                    limit: limits.max_line_len,
                });
            }
            *need = buf.len() + 1;
            Ok(None)
        }
    }
}

/// Requires `buf[at..at + 2] == b"\r\n"` (the caller checked it is buffered).
fn check_crlf(buf: &[u8], at: usize) -> Result<(), Error> {
    if &buf[at..at + 2] == b"\r\n" {
        Ok(())
    } else {
        Err(Error::MissingCrlf { offset: at })
    }
}

/// Phase one: proves the frame at `pos` is complete and returns its end offset.
///
/// Allocates nothing. `Ok(None)` sets `need` to a length the buffer must reach
/// before the answer can change.
fn scan(
    limits: &Limits,
    buf: &[u8],
    pos: usize,
    depth: usize,
    need: &mut usize,
) -> Result<Option<usize>, Error> {
    let Some(&kind) = buf.get(pos) else {
        *need = pos + 1;
        return Ok(None);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(Error::InvalidTypeByte {
            byte: kind,
            offset: pos,
        });
    }
    let Some(cr) = find_crlf(limits, buf, pos + 1, need)? else {
        return Ok(None);
    };
    let line = &buf[pos + 1..cr];
    let after = cr + 2;
    match kind {
        b'+' | b'-' => Ok(Some(after)),
        b':' => match parse_int(line) {
            Some(_) => Ok(Some(after)),
            None => Err(Error::InvalidInteger { offset: pos }),
        },
        b'$' => {
            let len = parse_len(line, pos)?;
            if len < 0 {
                return Ok(Some(after));
            }
            let len = match usize::try_from(len) {
                Ok(n) if n <= limits.max_bulk_len => n,
                _ => {
                    return Err(Error::BulkTooLarge {
                        len: len as u64,
                        limit: limits.max_bulk_len,
                    })
                }
            };
            let end = after + len + 2;
            if buf.len() < end {
                *need = end;
                return Ok(None);
            }
            check_crlf(buf, after + len)?;
            Ok(Some(end))
        }
        _ => {
            // b'*'
            let len = parse_len(line, pos)?;
            if len < 0 {
                return Ok(Some(after));
            }
            let count = match usize::try_from(len) {
                Ok(n) if n <= limits.max_array_len => n,
                _ => {
                    return Err(Error::ArrayTooLarge {
                        len: len as u64,
                        limit: limits.max_array_len,
                    })
                }
            };
            let max_depth = limits.max_depth.min(MAX_DEPTH_HARD);
            if depth + 1 > max_depth {
                return Err(Error::DepthExceeded { limit: max_depth });
            }
            let mut at = after;
            for _ in 0..count {
                match scan(limits, buf, at, depth + 1, need)? {
                    Some(end) => at = end,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
    }
}

/// Phase two: builds the frame at `pos` of a buffer [`scan`] has validated.
///
/// Returns the frame and its end offset. Payloads are slices of `raw`.
fn build(raw: &Bytes, pos: usize) -> (Frame, usize) {
    let buf = &raw[..];
    let cr = pos + 1 + memchr(b'\r', &buf[pos + 1..]).expect("scan() found this line's CRLF");
    let line = &buf[pos + 1..cr];
    let after = cr + 2;
    match buf[pos] {
        b'+' => (Frame::Simple(raw.slice(pos + 1..cr)), after),
        b'-' => (Frame::Error(raw.slice(pos + 1..cr)), after),
        b':' => (
            Frame::Integer(parse_int(line).expect("scan() validated the integer")),
            after,
        ),
        b'$' => match parse_int(line).expect("scan() validated the length") {
            len if len < 0 => (Frame::Null, after),
            len => {
                let end = after + len as usize;
                (Frame::Bulk(raw.slice(after..end)), end + 2)
            }
        },
        _ => match parse_int(line).expect("scan() validated the length") {
            len if len < 0 => (Frame::NullArray, after),
            len => {
                // Safe to reserve: scan() proved all `len` elements are buffered.
                let mut items = Vec::with_capacity(len as usize);
                let mut at = after;
                for _ in 0..len {
                    let (item, end) = build(raw, at);
                    items.push(item);
                    at = end;
                }
                (Frame::Array(items), at)
            }
        },
    }
}

/// Parses a `$`/`*` length: a decimal integer, `-1` for null, nothing below.
fn parse_len(line: &[u8], offset: usize) -> Result<i64, Error> {
    match parse_int(line) {
        Some(n) if n >= -1 => Ok(n),
        _ => Err(Error::InvalidLength { offset }),
    }
}

/// Parses an optionally negative decimal `i64`; `None` on anything else
/// (empty, stray bytes, `+` sign, overflow).
pub(crate) fn parse_int(line: &[u8]) -> Option<i64> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        n = if negative {
            n.checked_mul(10)?.checked_sub(digit)?
        } else {
            n.checked_mul(10)?.checked_add(digit)?
        };
    }
    Some(n)
}
