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

/// The shortest an array element can be (`+\r\n`): an array header of `N`
/// proves its frame is at least `3 * N` bytes longer.
const MIN_ELEMENT_LEN: usize = 3;

/// Decodes RESP2 frames from one byte stream.
///
/// A decoder belongs to one stream: while a frame is pending it remembers how
/// many bytes the frame needs at least (after an incomplete bulk header) and how
/// far into a pending array it has already scanned, and skips that work on the
/// next call. Call [`Decoder::reset`] before reusing it on another stream. (If the
/// buffer shrinks between calls the decoder notices and resets itself; a
/// completed frame whose scan was resumed is re-validated from byte 0 before it
/// is built, so misuse can delay a frame but never yield a wrong one.)
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    limits: Limits,
    /// The pending frame cannot be complete before the buffer holds this many
    /// bytes; 0 when nothing is known.
    need: usize,
    /// The buffer length when the pending state below was recorded; a shorter
    /// buffer means the caller switched streams without [`Decoder::reset`].
    seen: usize,
    /// Where the scan of a pending array frame resumes: the offset of the first
    /// element not yet proved complete; 0 when no array is pending.
    resume: usize,
    /// For each array open at `resume`, outermost first, how many of its
    /// elements are still to be scanned (always at least 1).
    open: Vec<usize>,
    /// Elements announced by the array headers of the pending frame scanned
    /// so far, for [`Limits::max_elements`].
    elements: usize,
    /// Lines searched for a CRLF, for tests proving work is not repeated.
    #[cfg(test)]
    scanned: usize,
}

/// What [`scan_one`] found at an offset.
enum Step {
    /// More bytes are needed; `need` was set.
    Incomplete,
    /// A complete scalar (or null array) ending at this offset.
    Done(usize),
    /// An array header of `count` elements whose first element starts at `after`.
    Array { count: usize, after: usize },
}

impl Decoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            ..Self::default()
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The least buffer length at which the pending frame can be complete, as
    /// far as the last call learnt; 0 when no frame is pending or nothing is
    /// known. After an incomplete bulk header this is the whole frame's length,
    /// so a caller can make room for a large payload in one allocation instead
    /// of growing the buffer step by step.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use resp::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// let mut buf = BytesMut::from(&b"$1000000\r\nabc"[..]);
    /// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    /// // "$1000000\r\n" (10 bytes), the payload, and its CRLF.
    /// assert_eq!(decoder.needed(), 10 + 1_000_000 + 2);
    /// ```
    pub fn needed(&self) -> usize {
        self.need
    }

    /// Forgets what is known about a pending frame.
    pub fn reset(&mut self) {
        self.need = 0;
        self.seen = 0;
        self.resume = 0;
        self.open.clear();
        self.elements = 0;
    }

    /// True when `buf` cannot hold a whole frame yet, by what earlier calls
    /// learnt; resets that knowledge if `buf` is not the stream it came from.
    #[inline]
    fn still_short(&mut self, buf: &[u8]) -> bool {
        if buf.len() < self.seen {
            self.reset();
        }
        buf.len() < self.need.max(1)
    }

    /// Records that the pending frame needs at least `need` bytes, or refuses
    /// it when that is more than [`Limits::max_frame_bytes`].
    #[inline]
    fn pending(&mut self, buf: &[u8], need: usize) -> Result<(), Error> {
        fits(&self.limits, need)?;
        self.need = need;
        self.seen = buf.len();
        Ok(())
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
    /// is left untouched and the stream cannot be resynchronised. A frame that
    /// breaks [`Limits::max_frame_bytes`] or [`Limits::max_elements`] is refused
    /// as soon as that is known, complete or not, so a hostile peer cannot make
    /// the caller buffer more than the limit while waiting for its end. (The
    /// one exception is a top-level bulk above [`Limits::max_bulk_len`]: see
    /// [`bulk_header`] for skipping it.)
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if self.still_short(buf) {
            return Ok(None);
        }
        // Scalars, the bulk of a pipelined reply stream, are measured and built
        // in one pass; arrays take the two-phase path.
        let frame = match buf[0] {
            b'*' => return Ok(self.decode_raw(buf)?.map(|(frame, _)| frame)),
            b':' => {
                let (n, end) = match self.fast_int(buf)? {
                    Some(hit) => hit,
                    None => {
                        let Some(end) = self.line(buf)? else {
                            return Ok(None);
                        };
                        let n =
                            parse_int(&buf[1..end]).ok_or(Error::InvalidInteger { offset: 0 })?;
                        (n, end)
                    }
                };
                buf.advance(end + 2);
                Frame::Integer(n)
            }
            kind @ (b'+' | b'-') => {
                let Some(end) = self.line(buf)? else {
                    return Ok(None);
                };
                if kind == b'+' {
                    if let Some(text) = well_known(&buf[1..end]) {
                        buf.advance(end + 2);
                        Frame::Simple(text)
                    } else {
                        Frame::Simple(split_line(buf, end))
                    }
                } else {
                    Frame::Error(split_line(buf, end))
                }
            }
            b'$' => {
                let (len, end) = match self.fast_int(buf)? {
                    Some((len, end)) if len >= -1 => (len, end),
                    Some(_) => return Err(Error::InvalidLength { offset: 0 }),
                    None => {
                        let Some(end) = self.line(buf)? else {
                            return Ok(None);
                        };
                        (parse_len(&buf[1..end], 0)?, end)
                    }
                };
                if len < 0 {
                    buf.advance(end + 2);
                    Frame::Null
                } else {
                    let len = check_len(len, self.limits.max_bulk_len, bulk_too_large)?;
                    let start = end + 2;
                    let total = start + len + 2;
                    fits(&self.limits, total)?;
                    if buf.len() < total {
                        self.pending(buf, total)?;
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
        // `seen` is set whenever anything is pending.
        if self.seen != 0 {
            self.reset();
        }
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
    /// Consumes nothing, but does record progress: calling it again on the same,
    /// grown buffer resumes where the last call stopped.
    ///
    /// # Errors
    ///
    /// As for [`Decoder::decode`].
    pub fn frame_len(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        if self.still_short(buf) {
            return Ok(None);
        }
        let resumed = self.resume > 0;
        let result = self.scan(buf);
        if resumed && !matches!(result, Ok(None)) {
            // The answer rests on bytes an earlier call scanned; prove it from
            // byte 0 before anything is built from them. This is one extra pass
            // per frame that spanned several reads, so the total stays linear.
            self.reset();
            return self.scan(buf);
        }
        result
    }

    /// Phase one: proves the frame at the front of `buf` is complete and
    /// returns its length, resuming a pending array scan. Allocates nothing
    /// (beyond growing the open-array stack to the nesting depth, once).
    /// Forgets the pending state on completion and on error.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let result = self.scan_from_resume(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    /// [`Decoder::scan`] without the reset.
    fn scan_from_resume(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let max_depth = self.limits.max_depth.min(MAX_DEPTH_HARD);
        let mut pos = self.resume;
        loop {
            #[cfg(test)]
            {
                self.scanned += 1;
            }
            let mut need = 0;
            match scan_one(&self.limits, buf, pos, &mut need)? {
                Step::Incomplete => {
                    self.pending(buf, need)?;
                    self.resume = pos;
                    return Ok(None);
                }
                Step::Done(end) => pos = end,
                Step::Array { count, after } => {
                    // The open arrays are exactly this one's ancestors.
                    if self.open.len() + 1 > max_depth {
                        return Err(Error::DepthExceeded { limit: max_depth });
                    }
                    // Counted before any element arrives, and kept across
                    // calls, so an endless array of tiny elements is cut off.
                    self.elements = self.elements.saturating_add(count);
                    if self.elements > self.limits.max_elements {
                        return Err(Error::TooManyElements {
                            limit: self.limits.max_elements,
                        });
                    }
                    fits(
                        &self.limits,
                        after.saturating_add(count.saturating_mul(MIN_ELEMENT_LEN)),
                    )?;
                    pos = after;
                    if count > 0 {
                        self.open.push(count);
                        continue;
                    }
                }
            }
            // An element ended at `pos`: close every array it completes.
            loop {
                let Some(left) = self.open.last_mut() else {
                    return Ok(Some(pos));
                };
                *left -= 1;
                if *left > 0 {
                    break;
                }
                self.open.pop();
            }
        }
    }

    /// [`fast_int`] on the line at offset 1, under this decoder's limits
    /// (a hit whose line alone breaks [`Limits::max_frame_bytes`] is refused).
    #[inline]
    fn fast_int(&mut self, buf: &[u8]) -> Result<Option<(i64, usize)>, Error> {
        let hit = fast_int(buf, self.limits.max_line_len);
        #[cfg(test)]
        {
            self.scanned += usize::from(hit.is_some());
        }
        if let Some((_, end)) = hit {
            fits(&self.limits, end + 2)?;
        }
        Ok(hit)
    }

    /// Finds the CRLF of the line starting at offset 1, recording `need` if
    /// absent; refuses a line that breaks [`Limits::max_frame_bytes`].
    #[inline]
    fn line(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        #[cfg(test)]
        {
            self.scanned += 1;
        }
        let mut need = 0;
        match find_crlf(&self.limits, buf, 1, &mut need)? {
            Some(end) => {
                fits(&self.limits, end + 2)?;
                Ok(Some(end))
            }
            None => {
                self.pending(buf, need)?;
                Ok(None)
            }
        }
    }

    /// Lines searched since the decoder was made (tests only).
    #[cfg(test)]
    pub(crate) fn scanned(&self) -> usize {
        self.scanned
    }
}

/// Scans the element header at `pos`: a whole scalar, or an array's header.
#[inline]
fn scan_one(limits: &Limits, buf: &[u8], pos: usize, need: &mut usize) -> Result<Step, Error> {
    let Some(&kind) = buf.get(pos) else {
        *need = pos + 1;
        return Ok(Step::Incomplete);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(Error::InvalidTypeByte {
            byte: kind,
            offset: pos,
        });
    }
    let Some(cr) = find_crlf(limits, buf, pos + 1, need)? else {
        return Ok(Step::Incomplete);
    };
    let line = &buf[pos + 1..cr];
    let after = cr + 2;
    fits(limits, after)?;
    match kind {
        b'+' | b'-' => Ok(Step::Done(after)),
        b':' => match parse_int(line) {
            Some(_) => Ok(Step::Done(after)),
            None => Err(Error::InvalidInteger { offset: pos }),
        },
        b'$' => {
            let len = parse_len(line, pos)?;
            if len < 0 {
                return Ok(Step::Done(after));
            }
            let len = check_len(len, limits.max_bulk_len, bulk_too_large)?;
            let end = after + len + 2;
            fits(limits, end)?;
            if buf.len() < end {
                *need = end;
                return Ok(Step::Incomplete);
            }
            check_crlf(buf, after + len)?;
            Ok(Step::Done(end))
        }
        _ => {
            // b'*'
            let len = parse_len(line, pos)?;
            if len < 0 {
                return Ok(Step::Done(after));
            }
            let count = check_len(len, limits.max_array_len, array_too_large)?;
            Ok(Step::Array { count, after })
        }
    }
}

/// Refuses a frame known to be at least `len` bytes long when that breaks
/// [`Limits::max_frame_bytes`]; `len` counts from the frame's first byte.
#[inline]
fn fits(limits: &Limits, len: usize) -> Result<(), Error> {
    if len > limits.max_frame_bytes {
        Err(Error::FrameTooLarge {
            limit: limits.max_frame_bytes,
        })
    } else {
        Ok(())
    }
}

/// The header of the bulk string at the front of `buf`: its length in bytes
/// (the `$`, the digits and the CRLF) and the payload length it declares.
/// `None` unless `buf` starts with a whole, valid, non-null bulk header.
///
/// This is how a caller skips a value it will not buffer: when
/// [`Decoder::decode`] refuses a top-level bulk with
/// [`Error::BulkTooLarge`], the header is already in `buf`, so the caller can
/// discard `header + len + 2` bytes (header, payload, CRLF) as they arrive,
/// call [`Decoder::reset`], and go on with the next reply. Nothing checks the
/// skipped payload's CRLF. A bulk inside an array cannot be skipped so (the
/// array is refused as a whole), and this returns `None` for it.
///
/// ```
/// use bytes::BytesMut;
/// use resp::{bulk_header, Decoder, Error, Limits};
///
/// let mut decoder = Decoder::with_limits(Limits { max_bulk_len: 4, ..Limits::default() });
/// let mut buf = BytesMut::from(&b"$10\r\n0123456789\r\n:7\r\n"[..]);
/// assert!(matches!(decoder.decode(&mut buf), Err(Error::BulkTooLarge { len: 10, .. })));
/// let (header, len) = bulk_header(&buf).unwrap();
/// assert_eq!((header, len), (5, 10));
/// let _ = buf.split_to(header + len as usize + 2); // or skip it as it arrives
/// decoder.reset();
/// assert_eq!(decoder.decode(&mut buf), Ok(Some(resp::Frame::Integer(7))));
/// ```
pub fn bulk_header(buf: &[u8]) -> Option<(usize, u64)> {
    if buf.first() != Some(&b'$') {
        return None;
    }
    // A canonical length has at most 19 digits (i64::MAX), then CR.
    let window = buf.get(1..buf.len().min(21))?;
    let cr = 1 + memchr(b'\r', window)?;
    if buf.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    let len = u64::try_from(parse_int(&buf[1..cr])?).ok()?;
    Some((cr + 2, len))
}

fn bulk_too_large(len: u64, limit: usize) -> Error {
    Error::BulkTooLarge { len, limit }
}

fn array_too_large(len: u64, limit: usize) -> Error {
    Error::ArrayTooLarge { len, limit }
}

/// Checks a non-negative announced length against `limit`, before anything
/// of that size is buffered or reserved.
#[inline]
fn check_len(len: i64, limit: usize, err: fn(u64, usize) -> Error) -> Result<usize, Error> {
    match usize::try_from(len) {
        Ok(n) if n <= limit => Ok(n),
        _ => Err(err(len.unsigned_abs(), limit)),
    }
}

/// Takes the line `buf[..end + 2]` off `buf`, returning its text (no type
/// byte, no CRLF) as a slice of the same memory.
#[inline]
fn split_line(buf: &mut BytesMut, end: usize) -> Bytes {
    let mut line = buf.split_to(end + 2);
    line.truncate(end);
    line.advance(1);
    line.freeze()
}

/// The status lines a pipelined migration sees by the million (`RESTORE`,
/// `SELECT` and `AUTH` reply `+OK`), as static [`Bytes`]: the same bytes with
/// no reference count to bump and drop, which is most of the cost of a small
/// reply. Anything else is sliced from the buffer as usual.
#[inline]
fn well_known(text: &[u8]) -> Option<Bytes> {
    match text {
        b"OK" => Some(Bytes::from_static(b"OK")),
        b"QUEUED" => Some(Bytes::from_static(b"QUEUED")),
        b"PONG" => Some(Bytes::from_static(b"PONG")),
        _ => None,
    }
}

/// Returns the offset of the CR ending the line that starts at `start`.
///
/// Looks at most `max_line_len + 1` bytes ahead, so an unterminated line costs
/// a bounded scan. `Ok(None)` sets `need`: the line is not yet terminated.
#[inline]
fn find_crlf(
    limits: &Limits,
    buf: &[u8],
    start: usize,
    need: &mut usize,
) -> Result<Option<usize>, Error> {
    let rest = buf.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(limits.max_line_len.saturating_add(1))];
    // Most lines (`+OK`, lengths) are short: a plain loop beats memchr's setup.
    let head = window.len().min(16);
    let found = match window[..head].iter().position(|&b| b == b'\r') {
        Some(i) => Some(i),
        None => memchr(b'\r', &window[head..]).map(|i| head + i),
    };
    match found {
        Some(i) if i > limits.max_line_len => Err(Error::LineTooLong {
            limit: limits.max_line_len,
        }),
        Some(i) => {
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
        None if rest.len() > limits.max_line_len => Err(Error::LineTooLong {
            limit: limits.max_line_len,
        }),
        None => {
            *need = buf.len() + 1;
            Ok(None)
        }
    }
}

/// The happy path of an integer or length line at offset 1: a canonical
/// decimal of at most 18 digits, then CRLF. Returns the value and the CR's
/// offset. `None` means "not this easy case", never "invalid": the caller then
/// takes the general path, which decides between `Ok(None)` and every error
/// exactly as [`scan_one`] does, so this only saves the separate CR search.
#[inline]
fn fast_int(buf: &[u8], max_line_len: usize) -> Option<(i64, usize)> {
    let negative = buf.get(1) == Some(&b'-');
    let first = 1 + usize::from(negative);
    let mut at = first;
    let mut n: i64 = 0;
    while let Some(&b) = buf.get(at) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        // At most 18 digits: below 10^18, so no overflow check is needed.
        if at - first == 18 {
            return None;
        }
        n = n * 10 + i64::from(digit);
        at += 1;
    }
    let digits = at - first;
    let leading_zero = digits > 0 && buf[first] == b'0' && (digits > 1 || negative);
    if digits == 0 || leading_zero || at - 1 > max_line_len {
        return None;
    }
    if buf.get(at..at + 2) != Some(b"\r\n") {
        return None;
    }
    Some((if negative { -n } else { n }, at))
}

/// Requires `buf[at..at + 2] == b"\r\n"` (the caller checked it is buffered).
#[inline]
fn check_crlf(buf: &[u8], at: usize) -> Result<(), Error> {
    if &buf[at..at + 2] == b"\r\n" {
        Ok(())
    } else {
        Err(Error::MissingCrlf { offset: at })
    }
}

/// Phase two: builds the frame at `pos` of a buffer [`Decoder::scan`] has
/// validated from byte 0.
///
/// Returns the frame and its end offset. Payloads are slices of `raw`.
/// Recursion is bounded by the depth limit scan enforced.
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

/// Parses a canonical decimal `i64`, the only form Redis writes: optional `-`,
/// then digits with no leading zero (`0` itself aside) and no `-0`. `None` on
/// anything else (empty, stray bytes, `+` sign, leading zeros, overflow), so
/// every accepted line re-encodes to exactly its own bytes.
#[inline]
pub(crate) fn parse_int(line: &[u8]) -> Option<i64> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [] | [b'0', ..] => return None,
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    let mut n: i64 = 0;
    for &d in digits {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        let digit = i64::from(digit);
        n = if negative {
            n.checked_mul(10)?.checked_sub(digit)?
        } else {
            n.checked_mul(10)?.checked_add(digit)?
        };
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, encoded_len, MAX_BULK_LEN, MAX_DEPTH};

    /// Appended to every input in the padded run: a frame-start that is itself
    /// invalid, so a decoder that read past its frame would fail loudly.
    const JUNK: &[u8] = b"?junk\r\n";

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
        let mut limits = Limits::default();
        f(&mut limits);
        limits
    }

    /// `input` is exactly one frame: every entry point decodes it, exact and
    /// padded with junk, consuming exactly `input.len()` bytes.
    fn ok_with(limits: Limits, input: &[u8], expected: &Frame) {
        for junk in [&b""[..], JUNK] {
            let mut bytes = BytesMut::from(input);
            bytes.extend_from_slice(junk);
            let case = format!("{input:?} + {junk:?}");

            let mut buf = bytes.clone();
            let got = Decoder::with_limits(limits).decode(&mut buf);
            assert_eq!(got, Ok(Some(expected.clone())), "decode {case}");
            assert_eq!(&buf[..], junk, "decode consumed exactly the frame: {case}");

            let mut buf = bytes.clone();
            let (frame, raw) = Decoder::with_limits(limits)
                .decode_raw(&mut buf)
                .unwrap_or_else(|e| panic!("decode_raw {case}: {e}"))
                .unwrap_or_else(|| panic!("decode_raw {case}: incomplete"));
            assert_eq!(&frame, expected, "decode_raw {case}");
            assert_eq!(&raw[..], input, "decode_raw raw bytes {case}");
            assert_eq!(
                &buf[..],
                junk,
                "decode_raw consumed exactly the frame: {case}"
            );

            let len = Decoder::with_limits(limits).frame_len(&bytes);
            assert_eq!(len, Ok(Some(input.len())), "frame_len {case}");
        }
        // What decodes re-encodes to the same bytes.
        let mut again = BytesMut::new();
        encode(expected, &mut again);
        assert_eq!(&again[..], input);
        assert_eq!(encoded_len(expected), input.len());
    }

    fn ok(input: &[u8], expected: &Frame) {
        ok_with(Limits::default(), input, expected);
    }

    /// `input` breaks the protocol with exactly `expected`, exact and padded,
    /// from every entry point; the buffer is left untouched.
    fn err_with(limits: Limits, input: &[u8], expected: &Error) {
        for junk in [&b""[..], JUNK] {
            let mut bytes = BytesMut::from(input);
            bytes.extend_from_slice(junk);
            let case = format!("{input:?} + {junk:?}");

            let mut buf = bytes.clone();
            assert_eq!(
                Decoder::with_limits(limits).decode(&mut buf),
                Err(expected.clone()),
                "decode {case}"
            );
            assert_eq!(buf, bytes, "an error leaves the buffer untouched: {case}");
            let mut buf = bytes.clone();
            assert_eq!(
                Decoder::with_limits(limits).decode_raw(&mut buf),
                Err(expected.clone()),
                "decode_raw {case}"
            );
            assert_eq!(buf, bytes, "an error leaves the buffer untouched: {case}");
            assert_eq!(
                Decoder::with_limits(limits).frame_len(&bytes),
                Err(expected.clone()),
                "frame_len {case}"
            );
        }
    }

    fn err(input: &[u8], expected: &Error) {
        err_with(Limits::default(), input, expected);
    }

    /// `input` is a strict prefix of a frame: `Ok(None)`, buffer untouched.
    fn incomplete_with(limits: Limits, input: &[u8]) {
        let mut buf = BytesMut::from(input);
        assert_eq!(
            Decoder::with_limits(limits).decode(&mut buf),
            Ok(None),
            "{input:?}"
        );
        assert_eq!(&buf[..], input, "Ok(None) leaves the buffer untouched");
        assert_eq!(
            Decoder::with_limits(limits).decode_raw(&mut buf),
            Ok(None),
            "{input:?}"
        );
        assert_eq!(&buf[..], input);
        assert_eq!(
            Decoder::with_limits(limits).frame_len(input),
            Ok(None),
            "{input:?}"
        );
    }

    fn incomplete(input: &[u8]) {
        incomplete_with(Limits::default(), input);
    }

    #[test]
    fn simple_strings() {
        ok(b"+OK\r\n", &Frame::Simple("OK".into()));
        ok(b"+\r\n", &Frame::Simple("".into()));
        ok(
            b"+QUEUED with spaces\r\n",
            &Frame::Simple("QUEUED with spaces".into()),
        );
        // Binary bytes other than CR pass through; nothing is UTF-8 checked.
        ok(
            b"+\xff\x00\n\r\n",
            &Frame::Simple(Bytes::from_static(b"\xff\x00\n")),
        );
    }

    #[test]
    fn errors() {
        ok(
            b"-ERR unknown command 'FOO'\r\n",
            &Frame::Error("ERR unknown command 'FOO'".into()),
        );
        ok(
            b"-BUSYKEY Target key name already exists.\r\n",
            &Frame::Error("BUSYKEY Target key name already exists.".into()),
        );
        ok(b"-\r\n", &Frame::Error("".into()));
    }

    #[test]
    fn integers() {
        for n in [0, 1, -1, -2, 42, 1_000_000, i64::MAX, i64::MIN] {
            ok(format!(":{n}\r\n").as_bytes(), &Frame::Integer(n));
        }
    }

    #[test]
    fn bulk_strings() {
        ok(b"$5\r\nhello\r\n", &bulk("hello"));
        ok(b"$0\r\n\r\n", &bulk(""));
        // Binary-safe: CR, LF and NUL inside the payload are data.
        ok(
            b"$6\r\n\r\n\0\r\n\n\r\n",
            &Frame::Bulk(Bytes::from_static(b"\r\n\0\r\n\n")),
        );
        let big = vec![b'x'; 100_000];
        let mut input = b"$100000\r\n".to_vec();
        input.extend_from_slice(&big);
        input.extend_from_slice(b"\r\n");
        ok(&input, &Frame::Bulk(big.into()));
    }

    #[test]
    fn nulls() {
        // $-1 is a null bulk; *-1 a null array; both occur in replies.
        ok(b"$-1\r\n", &Frame::Null);
        ok(b"*-1\r\n", &Frame::NullArray);
    }

    #[test]
    fn arrays() {
        ok(b"*0\r\n", &Frame::Array(vec![]));
        ok(
            b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
            &Frame::Array(vec![bulk("GET"), bulk("key")]),
        );
        // A SCAN reply: cursor, then an array of keys.
        ok(
            b"*2\r\n$1\r\n0\r\n*2\r\n$3\r\nk:1\r\n$3\r\nk:2\r\n",
            &Frame::Array(vec![
                bulk("0"),
                Frame::Array(vec![bulk("k:1"), bulk("k:2")]),
            ]),
        );
        // Every element type, including the nulls and an empty array.
        ok(
            b"*8\r\n+OK\r\n-ERR x\r\n:-2\r\n$1\r\nv\r\n$-1\r\n*-1\r\n*0\r\n*1\r\n*1\r\n:7\r\n",
            &Frame::Array(vec![
                Frame::Simple("OK".into()),
                Frame::Error("ERR x".into()),
                Frame::Integer(-2),
                bulk("v"),
                Frame::Null,
                Frame::NullArray,
                Frame::Array(vec![]),
                Frame::Array(vec![Frame::Array(vec![Frame::Integer(7)])]),
            ]),
        );
    }

    #[test]
    fn incomplete_frames_are_ok_none_at_every_prefix() {
        let frames: [&[u8]; 8] = [
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-123\r\n",
            b"$5\r\nhello\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n*1\r\n:1\r\n$3\r\nfoo\r\n",
        ];
        for frame in frames {
            for cut in 0..frame.len() {
                incomplete(&frame[..cut]);
            }
        }
    }

    #[test]
    fn invalid_type_byte() {
        err(
            b"?\r\n",
            &Error::InvalidTypeByte {
                byte: b'?',
                offset: 0,
            },
        );
        // RESP3 types are not RESP2.
        err(
            b"_\r\n",
            &Error::InvalidTypeByte {
                byte: b'_',
                offset: 0,
            },
        );
        err(
            b"%1\r\n",
            &Error::InvalidTypeByte {
                byte: b'%',
                offset: 0,
            },
        );
        // An inline command / stray text is not a reply.
        err(
            b"PING\r\n",
            &Error::InvalidTypeByte {
                byte: b'P',
                offset: 0,
            },
        );
        // Offsets count from the start of the buffer, inside arrays too.
        err(
            b"*2\r\n:1\r\n\x00",
            &Error::InvalidTypeByte { byte: 0, offset: 8 },
        );
        err(
            b"*1\r\n*1\r\n!x\r\n",
            &Error::InvalidTypeByte {
                byte: b'!',
                offset: 8,
            },
        );
    }

    #[test]
    fn invalid_length() {
        for bad in [
            &b"$-2\r\n"[..],
            b"$\r\n",
            b"$abc\r\n",
            b"$+1\r\n",
            b"$ 1\r\n",
            b"$1 \r\n",
            b"$01\r\n",
            b"$-0\r\n",
            b"$-01\r\n",
            b"$99999999999999999999\r\n",
            b"*-2\r\n",
            b"*x\r\n",
            b"*00\r\n",
        ] {
            err(bad, &Error::InvalidLength { offset: 0 });
        }
        err(b"*1\r\n$-5\r\n", &Error::InvalidLength { offset: 4 });
        err(b"*2\r\n:1\r\n*?\r\n", &Error::InvalidLength { offset: 8 });
    }

    #[test]
    fn invalid_integer() {
        for bad in [
            &b":\r\n"[..],
            b":-\r\n",
            b":abc\r\n",
            b":+1\r\n",
            b":1.5\r\n",
            b": 1\r\n",
            b":007\r\n",
            b":-0\r\n",
            b":9223372036854775808\r\n",
            b":-9223372036854775809\r\n",
            b":12345678901234567890123\r\n",
        ] {
            err(bad, &Error::InvalidInteger { offset: 0 });
        }
        err(
            b"*3\r\n:1\r\n:2\r\n:x\r\n",
            &Error::InvalidInteger { offset: 12 },
        );
    }

    #[test]
    fn missing_crlf() {
        // A CR not followed by LF, in each kind of line.
        err(b"+OK\rX\n", &Error::MissingCrlf { offset: 3 });
        err(b"-ERR\r\r\n", &Error::MissingCrlf { offset: 4 });
        err(b":1\rx", &Error::MissingCrlf { offset: 2 });
        err(b"$3\rfoo\r\n", &Error::MissingCrlf { offset: 2 });
        err(b"*1\r:1\r\n", &Error::MissingCrlf { offset: 2 });
        // A bulk payload not followed by CRLF: its length lied.
        err(b"$3\r\nfooXY", &Error::MissingCrlf { offset: 7 });
        err(b"$3\r\nfoo\rX", &Error::MissingCrlf { offset: 7 });
        err(b"$3\r\nfo\r\n\r\n", &Error::MissingCrlf { offset: 7 });
        err(b"*2\r\n$1\r\nab\r\n", &Error::MissingCrlf { offset: 9 });
    }

    #[test]
    fn bulk_too_large() {
        let over = MAX_BULK_LEN as u64 + 1;
        // Refused from the header alone, before any payload is buffered.
        err(
            format!("${over}\r\n").as_bytes(),
            &Error::BulkTooLarge {
                len: over,
                limit: MAX_BULK_LEN,
            },
        );
        err(
            format!("*1\r\n${over}\r\n").as_bytes(),
            &Error::BulkTooLarge {
                len: over,
                limit: MAX_BULK_LEN,
            },
        );
    }

    #[test]
    fn array_too_large() {
        let l = limits(|l| l.max_array_len = 2);
        err_with(l, b"*3\r\n", &Error::ArrayTooLarge { len: 3, limit: 2 });
        err_with(
            l,
            b"*1\r\n*3\r\n",
            &Error::ArrayTooLarge { len: 3, limit: 2 },
        );
        // The default admits 2^32 - 1 elements; one more is refused from the
        // header, with nothing reserved for the elements.
        let over = crate::MAX_ARRAY_LEN as u64 + 1;
        err(
            format!("*{over}\r\n").as_bytes(),
            &Error::ArrayTooLarge {
                len: over,
                limit: crate::MAX_ARRAY_LEN,
            },
        );
        // The largest array passes this check; with the frame limits lifted
        // it is merely incomplete (the defaults refuse it: see
        // an_endless_array_of_tiny_bulks_is_cut_off).
        let unbounded = limits(|l| {
            l.max_elements = usize::MAX;
            l.max_frame_bytes = usize::MAX;
        });
        incomplete_with(
            unbounded,
            format!("*{}\r\n:1\r\n", crate::MAX_ARRAY_LEN).as_bytes(),
        );
    }

    #[test]
    fn depth_exceeded() {
        let l = limits(|l| l.max_depth = 1);
        err_with(l, b"*1\r\n*0\r\n", &Error::DepthExceeded { limit: 1 });
        // A null array is a value, not a level of nesting.
        ok_with(l, b"*1\r\n*-1\r\n", &Frame::Array(vec![Frame::NullArray]));
        let l = limits(|l| l.max_depth = 0);
        err_with(l, b"*0\r\n", &Error::DepthExceeded { limit: 0 });
        ok_with(l, b"*-1\r\n", &Frame::NullArray);
    }

    #[test]
    fn line_too_long() {
        let l = limits(|l| l.max_line_len = 4);
        err_with(l, b"+12345\r\n", &Error::LineTooLong { limit: 4 });
        err_with(l, b"-12345\r\n", &Error::LineTooLong { limit: 4 });
        err_with(l, b":12345\r\n", &Error::LineTooLong { limit: 4 });
        err_with(l, b"$12345\r\n", &Error::LineTooLong { limit: 4 });
        err_with(l, b"*1\r\n+12345\r\n", &Error::LineTooLong { limit: 4 });
        // Unterminated: refused as soon as it is longer than the limit.
        err_with(l, b"+12345", &Error::LineTooLong { limit: 4 });
    }

    #[test]
    fn errors_display_lowercase_with_values() {
        let cases = [
            (
                Error::InvalidTypeByte {
                    byte: b'?',
                    offset: 17,
                },
                "invalid type byte 0x3f at offset 17",
            ),
            (
                Error::InvalidLength { offset: 3 },
                "invalid length at offset 3",
            ),
            (
                Error::InvalidInteger { offset: 4 },
                "invalid integer at offset 4",
            ),
            (Error::MissingCrlf { offset: 5 }, "missing CRLF at offset 5"),
            (
                Error::BulkTooLarge {
                    len: 600_000_000,
                    limit: 536_870_912,
                },
                "bulk length 600000000 exceeds limit 536870912",
            ),
            (
                Error::ArrayTooLarge { len: 9, limit: 8 },
                "array length 9 exceeds limit 8",
            ),
            (
                Error::DepthExceeded { limit: 100 },
                "arrays nested deeper than limit 100",
            ),
            (
                Error::LineTooLong { limit: 65536 },
                "line longer than limit 65536",
            ),
            (
                Error::FrameTooLarge { limit: 1024 },
                "frame longer than limit 1024 bytes",
            ),
            (
                Error::TooManyElements { limit: 16 },
                "frame holds more elements than limit 16",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    fn nested(levels: usize) -> (Vec<u8>, Frame) {
        let mut input = b"*1\r\n".repeat(levels);
        input.extend_from_slice(b":1\r\n");
        let mut frame = Frame::Integer(1);
        for _ in 0..levels {
            frame = Frame::Array(vec![frame]);
        }
        (input, frame)
    }

    #[test]
    fn max_bulk_len_boundary() {
        let l = limits(|l| l.max_bulk_len = 10);
        ok_with(l, b"$10\r\n0123456789\r\n", &bulk("0123456789"));
        err_with(l, b"$11\r\n", &Error::BulkTooLarge { len: 11, limit: 10 });
        err_with(
            l,
            b"$11\r\n0123456789X\r\n",
            &Error::BulkTooLarge { len: 11, limit: 10 },
        );
        let l = limits(|l| l.max_bulk_len = 0);
        ok_with(l, b"$0\r\n\r\n", &bulk(""));
        ok_with(l, b"$-1\r\n", &Frame::Null);
        err_with(l, b"$1\r\n", &Error::BulkTooLarge { len: 1, limit: 0 });
    }

    #[test]
    fn max_array_len_boundary() {
        let l = limits(|l| l.max_array_len = 3);
        let three = Frame::Array(vec![Frame::Integer(1); 3]);
        ok_with(l, b"*3\r\n:1\r\n:1\r\n:1\r\n", &three);
        err_with(
            l,
            b"*4\r\n:1\r\n:1\r\n:1\r\n:1\r\n",
            &Error::ArrayTooLarge { len: 4, limit: 3 },
        );
        err_with(l, b"*4\r\n", &Error::ArrayTooLarge { len: 4, limit: 3 });
    }

    #[test]
    fn max_depth_boundary() {
        for depth in [1, 5, MAX_DEPTH] {
            let l = limits(|l| l.max_depth = depth);
            let (input, frame) = nested(depth);
            ok_with(l, &input, &frame);
            let (input, _) = nested(depth + 1);
            err_with(l, &input, &Error::DepthExceeded { limit: depth });
        }
        // The default is MAX_DEPTH.
        let (input, frame) = nested(MAX_DEPTH);
        ok(&input, &frame);
        err(
            &nested(MAX_DEPTH + 1).0,
            &Error::DepthExceeded { limit: MAX_DEPTH },
        );
    }

    #[test]
    fn max_depth_is_clamped_to_the_hard_limit() {
        let l = limits(|l| l.max_depth = usize::MAX);
        let (input, frame) = nested(MAX_DEPTH_HARD);
        ok_with(l, &input, &frame);
        let (input, _) = nested(MAX_DEPTH_HARD + 1);
        err_with(
            l,
            &input,
            &Error::DepthExceeded {
                limit: MAX_DEPTH_HARD,
            },
        );
        let l = limits(|l| l.max_depth = MAX_DEPTH_HARD + 1);
        err_with(
            l,
            &input,
            &Error::DepthExceeded {
                limit: MAX_DEPTH_HARD,
            },
        );
    }

    #[test]
    fn max_line_len_boundary() {
        let l = limits(|l| l.max_line_len = 8);
        ok_with(l, b"+12345678\r\n", &Frame::Simple("12345678".into()));
        err_with(l, b"+123456789\r\n", &Error::LineTooLong { limit: 8 });
        ok_with(l, b"-12345678\r\n", &Frame::Error("12345678".into()));
        err_with(l, b"-123456789\r\n", &Error::LineTooLong { limit: 8 });
        ok_with(l, b":12345678\r\n", &Frame::Integer(12_345_678));
        err_with(l, b":123456789\r\n", &Error::LineTooLong { limit: 8 });
        // Unterminated at the limit may still end; one byte more cannot.
        incomplete_with(l, b"+12345678");
        incomplete_with(l, b"+12345678\r");
        err_with(l, b"+123456789", &Error::LineTooLong { limit: 8 });
        // The limit is on lines, not on bulk payloads.
        ok_with(l, b"$10\r\n0123456789\r\n", &bulk("0123456789"));
    }

    #[test]
    fn a_large_bulk_in_64k_reads_is_scanned_once() {
        const PAYLOAD: usize = 1 << 20;
        const READ: usize = 64 << 10;
        let mut stream = format!("${PAYLOAD}\r\n").into_bytes();
        stream.extend((0..PAYLOAD).map(|i| i as u8));
        stream.extend_from_slice(b"\r\n");
        for wrap in [false, true] {
            let input = if wrap {
                [&b"*1\r\n"[..], &stream].concat()
            } else {
                stream.clone()
            };
            let mut decoder = Decoder::new();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for piece in input.chunks(READ) {
                buf.extend_from_slice(piece);
                if let Some(frame) = decoder.decode(&mut buf).expect("valid") {
                    frames.push(frame);
                }
            }
            assert!(buf.is_empty());
            assert_eq!(frames.len(), 1);
            let payload = match &frames[0] {
                Frame::Array(items) => items[0].as_bulk().expect("bulk"),
                frame => frame.as_bulk().expect("bulk"),
            };
            assert_eq!(
                &payload[..],
                &stream[stream.len() - PAYLOAD - 2..stream.len() - 2]
            );
            // The header is read when the first piece arrives, then nothing is
            // looked at until the last piece completes the frame: 17 reads,
            // a handful of line searches, not one per read.
            let expected = if wrap {
                // *1 and $N, then on completion resume at $N and prove all
                // from byte 0 (2 more).
                2 + 1 + 2
            } else {
                2
            };
            assert_eq!(decoder.scanned(), expected, "wrap {wrap}");
        }
    }

    #[test]
    fn a_large_array_in_small_reads_is_scanned_linearly() {
        const ITEMS: usize = 10_000;
        let mut input = format!("*{ITEMS}\r\n").into_bytes();
        for i in 0..ITEMS {
            input.extend_from_slice(
                format!("${}\r\nkey:{i}\r\n", 4 + i.to_string().len()).as_bytes(),
            );
        }
        let mut decoder = Decoder::new();
        let mut buf = BytesMut::new();
        let mut frame = None;
        let pieces = input.chunks(100).count();
        for piece in input.chunks(100) {
            buf.extend_from_slice(piece);
            if let Some(f) = decoder.decode(&mut buf).expect("valid") {
                frame = Some(f);
            }
        }
        let items = frame.expect("complete").into_array().expect("array");
        assert_eq!(items.len(), ITEMS);
        assert_eq!(items[9_999], bulk("key:9999"));
        // Restarting from byte 0 on each read would cost ~ITEMS * pieces / 2.
        let bound = 2 * (ITEMS + 1) + pieces;
        assert!(
            decoder.scanned() <= bound,
            "{} > {bound}",
            decoder.scanned()
        );
    }

    #[test]
    fn payloads_share_the_read_buffer() {
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(b"$5\r\nhello\r\n+OKAY\r\n*2\r\n$3\r\nfoo\r\n-ERR e\r\n");
        let base = buf.as_ptr() as usize;
        let end = base + buf.capacity();
        let inside = |b: &Bytes| {
            let p = b.as_ptr() as usize;
            assert!(p >= base && p + b.len() <= end, "payload {b:?} was copied");
        };
        let mut decoder = Decoder::new();
        let bulk = decoder.decode(&mut buf).unwrap().unwrap();
        inside(bulk.as_bulk().unwrap());
        assert_eq!(bulk.as_bulk().unwrap().as_ptr() as usize, base + 4);
        match decoder.decode(&mut buf).unwrap().unwrap() {
            Frame::Simple(s) => inside(&s),
            other => panic!("{other:?}"),
        }
        let (frame, raw) = decoder.decode_raw(&mut buf).unwrap().unwrap();
        let raw_start = raw.as_ptr() as usize;
        assert_eq!(
            raw_start,
            base + 18,
            "the raw frame is a slice of the buffer"
        );
        let mut payloads = frame.into_array().unwrap().into_iter();
        let foo = payloads.next().unwrap();
        let foo = foo.as_bulk().unwrap();
        // Inside the raw frame, which is itself inside the read buffer.
        inside(&raw);
        let p = foo.as_ptr() as usize;
        assert!(p >= raw_start && p + foo.len() <= raw_start + raw.len());
        assert_eq!(p, raw_start + 8);
        inside(payloads.next().unwrap().as_error().unwrap());
    }

    #[test]
    fn well_known_status_lines_are_static_and_equal() {
        for text in ["OK", "QUEUED", "PONG"] {
            let mut buf = BytesMut::from(format!("+{text}\r\n").as_bytes());
            let frame = Decoder::new().decode(&mut buf).unwrap().unwrap();
            assert_eq!(
                frame,
                Frame::Simple(Bytes::copy_from_slice(text.as_bytes()))
            );
            assert!(buf.is_empty());
        }
        // Near misses are sliced as usual.
        ok(b"+OKAY\r\n", &Frame::Simple("OKAY".into()));
        ok(b"+O\r\n", &Frame::Simple("O".into()));
        ok(b"-OK\r\n", &Frame::Error("OK".into()));
    }

    #[test]
    fn a_pipelined_stream_decodes_frame_by_frame() {
        let mut buf =
            BytesMut::from(&b"+OK\r\n:1\r\n$3\r\nabc\r\n$-1\r\n*1\r\n:2\r\n-ERR x\r\n+PART"[..]);
        let mut decoder = Decoder::new();
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
        assert_eq!(
            frames,
            [
                Frame::Simple("OK".into()),
                Frame::Integer(1),
                bulk("abc"),
                Frame::Null,
                Frame::Array(vec![Frame::Integer(2)]),
                Frame::Error("ERR x".into()),
            ]
        );
        assert_eq!(&buf[..], b"+PART");
        buf.extend_from_slice(b"IAL\r\n");
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Simple("PARTIAL".into())))
        );
    }

    #[test]
    fn a_switched_buffer_never_yields_a_wrong_frame() {
        // Misuse: pending state from one buffer, then another without reset().
        let mut decoder = Decoder::new();
        let mut first = BytesMut::from(&b"*3\r\n:1\r\n:2\r\n"[..]);
        assert_eq!(decoder.decode(&mut first), Ok(None));
        // A shorter buffer: the decoder notices and starts over.
        let mut short = BytesMut::from(&b"*1\r\n:9\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut short),
            Ok(Some(Frame::Array(vec![Frame::Integer(9)])))
        );
        // A longer one whose resumed scan "completes": re-proved from byte 0.
        assert_eq!(decoder.decode(&mut first), Ok(None));
        let mut other = BytesMut::from(&b"*2\r\n:1\r\n+x\r\n:3\r\n+y\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut other),
            Ok(Some(Frame::Array(vec![
                Frame::Integer(1),
                Frame::Simple("x".into())
            ])))
        );
        // reset() makes any buffer fair game.
        assert_eq!(decoder.decode(&mut first), Ok(None));
        decoder.reset();
        let mut fresh = BytesMut::from(&b":5\r\n"[..]);
        assert_eq!(decoder.decode(&mut fresh), Ok(Some(Frame::Integer(5))));
    }

    /// One frame of `kind` exactly `n` bytes long (`n` at least 10).
    fn frame_of(kind: u8, n: usize) -> Vec<u8> {
        match kind {
            b'+' | b'-' => [&[kind][..], &vec![b'x'; n - 3], b"\r\n"].concat(),
            b':' => [&b":1"[..], &vec![b'0'; n - 4], b"\r\n"].concat(),
            b'$' => (0..n)
                .map(|k| {
                    let mut v = format!("${k}\r\n").into_bytes();
                    v.extend(std::iter::repeat_n(b'b', k));
                    v.extend_from_slice(b"\r\n");
                    v
                })
                .find(|v| v.len() == n)
                .expect("some payload length fits"),
            _ => [&b"*1\r\n"[..], &frame_of(b'$', n - 4)].concat(),
        }
    }

    /// The next frame, through `decode_raw` when `raw`, else `decode`.
    fn take(decoder: &mut Decoder, buf: &mut BytesMut, raw: bool) -> Result<Option<Frame>, Error> {
        if raw {
            decoder.decode_raw(buf).map(|o| o.map(|(frame, _)| frame))
        } else {
            decoder.decode(buf)
        }
    }

    /// Feeds `input` `step` bytes at a time to one decoder, taking every frame
    /// after each piece (with `decode_raw` when `raw`): the frames, then the
    /// first error and how many bytes had been fed when it came.
    fn feed(
        limits: Limits,
        input: &[u8],
        step: usize,
        raw: bool,
    ) -> (Vec<Frame>, Option<(Error, usize)>) {
        let mut decoder = Decoder::with_limits(limits);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut fed = 0;
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            fed += piece.len();
            loop {
                match take(&mut decoder, &mut buf, raw) {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(e) => return (frames, Some((e, fed))),
                }
            }
        }
        (frames, None)
    }

    #[test]
    fn max_frame_bytes_boundary() {
        for limit in [10, 40, 300] {
            let l = limits(|l| l.max_frame_bytes = limit);
            let too_large = Error::FrameTooLarge { limit };
            for kind in [b'+', b'-', b':', b'$', b'*'] {
                if kind == b':' && limit > 22 {
                    continue; // no i64 is that long
                }
                let at = frame_of(kind, limit);
                let over = frame_of(kind, limit + 1);
                let mut buf = BytesMut::from(&at[..]);
                let frame = Decoder::new().decode(&mut buf).unwrap().unwrap();
                ok_with(l, &at, &frame);
                err_with(l, &over, &too_large);
                for step in [1, 3, limit] {
                    for raw in [false, true] {
                        let case = format!("{:?} step {step} raw {raw}", kind as char);
                        assert_eq!(
                            feed(l, &at, step, raw),
                            (vec![frame.clone()], None),
                            "{case}"
                        );
                        // Refused once the buffer holds `limit` bytes of it and
                        // it is not done, not when it completes.
                        let (frames, error) = feed(l, &over, step, raw);
                        assert!(frames.is_empty(), "{case}");
                        let (error, fed) = error.expect("refused");
                        assert_eq!(error, too_large, "{case}");
                        assert!(fed <= limit.next_multiple_of(step), "{case}: fed {fed}");
                    }
                }
            }
        }
    }

    #[test]
    fn max_frame_bytes_concerns_the_front_frame_not_the_buffer() {
        let l = limits(|l| l.max_frame_bytes = 10);
        let frame = frame_of(b'$', 10);
        // Five whole frames and the first 8 bytes of a sixth: 58 bytes in all.
        let mut stream = frame.repeat(6);
        stream.truncate(58);
        for raw in [false, true] {
            let mut decoder = Decoder::with_limits(l);
            let mut buf = BytesMut::from(&stream[..]);
            let mut frames = 0;
            while take(&mut decoder, &mut buf, raw)
                .expect("each frame is within the limit")
                .is_some()
            {
                frames += 1;
            }
            assert_eq!(frames, 5);
            assert_eq!(&buf[..], &frame[..8]);
            assert_eq!(decoder.frame_len(&stream), Ok(Some(10)));
            // And chunked, where the buffer often holds more than 10 bytes.
            assert_eq!(feed(l, &stream, 7, raw).0.len(), 5);
            assert_eq!(feed(l, &stream, 7, raw).1, None);
        }
    }

    #[test]
    fn a_header_proves_a_frame_too_large() {
        let l = limits(|l| l.max_frame_bytes = 100);
        let too_large = Error::FrameTooLarge { limit: 100 };
        // A bulk header announcing more than fits: refused with 6 bytes seen.
        err_with(l, b"$200\r\n", &too_large);
        // "$94\r\n" + 94 + CRLF is 101; "$93\r\n" ... is 100.
        err_with(l, b"$94\r\n", &too_large);
        incomplete_with(l, b"$93\r\n");
        // An array of N needs at least 3 bytes per element: "*32\r\n" proves
        // 5 + 96 = 101 bytes, "*31\r\n" only 98.
        err_with(l, b"*32\r\n", &too_large);
        incomplete_with(l, b"*31\r\n");
        err_with(l, b"*1\r\n*32\r\n", &too_large);
        // 31 of the shortest elements still fit.
        let mut shortest = b"*31\r\n".to_vec();
        shortest.extend(b"+\r\n".repeat(31));
        ok_with(
            l,
            &shortest,
            &Frame::Array(vec![Frame::Simple("".into()); 31]),
        );
        // An unterminated line is refused once the buffer holds 100 bytes.
        let line = [&b"+"[..], &[b'x'; 98]].concat();
        incomplete_with(l, &line);
        err_with(l, &[&line[..], b"x"].concat(), &too_large);
    }

    #[test]
    fn the_largest_bulk_fits_the_default_frame_limit() {
        let header = format!("${MAX_BULK_LEN}\r\n");
        let mut decoder = Decoder::new();
        assert_eq!(decoder.frame_len(header.as_bytes()), Ok(None));
        let total = header.len() + MAX_BULK_LEN + 2;
        assert_eq!(decoder.needed(), total);
        assert!(total <= crate::MAX_FRAME_BYTES);
        assert_eq!(Limits::default().max_frame_bytes, crate::MAX_FRAME_BYTES);
        assert_eq!(Limits::default().max_elements, crate::MAX_ELEMENTS);
        // At the default limit and one byte over it, from the header alone.
        let l = limits(|l| l.max_bulk_len = usize::MAX);
        let fits = crate::MAX_FRAME_BYTES - 2 - 12;
        incomplete_with(l, format!("${fits}\r\n").as_bytes());
        err_with(
            l,
            format!("${}\r\n", fits + 1).as_bytes(),
            &Error::FrameTooLarge {
                limit: crate::MAX_FRAME_BYTES,
            },
        );
    }

    #[test]
    fn max_elements_boundary() {
        let l = limits(|l| l.max_elements = 3);
        let too_many = Error::TooManyElements { limit: 3 };
        let three = Frame::Array(vec![Frame::Integer(1); 3]);
        ok_with(l, b"*3\r\n:1\r\n:1\r\n:1\r\n", &three);
        err_with(l, b"*4\r\n:1\r\n:1\r\n:1\r\n:1\r\n", &too_many);
        // Refused at the header, before any element arrives.
        err_with(l, b"*4\r\n", &too_many);
        // Counted across nested arrays: 2 + 1 = 3, then 2 + 2 = 4.
        ok_with(
            l,
            b"*2\r\n*1\r\n:1\r\n:1\r\n",
            &Frame::Array(vec![
                Frame::Array(vec![Frame::Integer(1)]),
                Frame::Integer(1),
            ]),
        );
        err_with(l, b"*2\r\n*2\r\n", &too_many);
        // Null arrays and scalars hold no elements.
        ok_with(
            l,
            b"*3\r\n*-1\r\n*0\r\n$-1\r\n",
            &Frame::Array(vec![Frame::NullArray, Frame::Array(vec![]), Frame::Null]),
        );
        let none = limits(|l| l.max_elements = 0);
        ok_with(none, b"*0\r\n", &Frame::Array(vec![]));
        ok_with(none, b":1\r\n", &Frame::Integer(1));
        err_with(none, b"*1\r\n", &Error::TooManyElements { limit: 0 });
    }

    #[test]
    fn max_elements_is_counted_across_resumed_calls() {
        // 2 + 2 + 1 = 5 elements; the third header breaks a limit of 4.
        let input = b"*2\r\n*2\r\n:1\r\n:1\r\n*1\r\n:1\r\n";
        let header_end = input.len() - 4;
        let want = Frame::Array(vec![
            Frame::Array(vec![Frame::Integer(1); 2]),
            Frame::Array(vec![Frame::Integer(1)]),
        ]);
        for step in 1..input.len() {
            for raw in [false, true] {
                let at = limits(|l| l.max_elements = 5);
                assert_eq!(feed(at, input, step, raw), (vec![want.clone()], None));
                let over = limits(|l| l.max_elements = 4);
                let (frames, error) = feed(over, input, step, raw);
                assert!(frames.is_empty());
                let (error, fed) = error.expect("refused");
                assert_eq!(error, Error::TooManyElements { limit: 4 });
                // As soon as the third header is whole, before its element.
                assert_eq!(fed, header_end.next_multiple_of(step).min(input.len()));
            }
        }
    }

    #[test]
    fn an_endless_array_of_tiny_bulks_is_cut_off() {
        // The attack: the largest legal array header, then tiny bulks forever.
        // Every element is within limits and the frame never completes.
        let header = format!("*{}\r\n", crate::MAX_ARRAY_LEN);
        let tiny = b"$0\r\n\r\n";
        let stream = |len: usize| {
            let mut s = header.clone().into_bytes();
            while s.len() < len {
                s.extend_from_slice(tiny);
            }
            s
        };
        // The defaults refuse it from the header alone.
        err(
            header.as_bytes(),
            &Error::TooManyElements {
                limit: crate::MAX_ELEMENTS,
            },
        );
        for step in [1, 7, 4096] {
            let (_, error) = feed(Limits::default(), &stream(1 << 16), step, false);
            let (error, fed) = error.expect("refused");
            assert_eq!(
                error,
                Error::TooManyElements {
                    limit: crate::MAX_ELEMENTS
                }
            );
            assert!(fed <= header.len().next_multiple_of(step));
        }
        // Without the element limit, the frame limit cuts it off as the header
        // proves it longer; without that, once the buffer holds the limit.
        let l = limits(|l| l.max_elements = usize::MAX);
        err_with(
            l,
            header.as_bytes(),
            &Error::FrameTooLarge {
                limit: crate::MAX_FRAME_BYTES,
            },
        );
        // A header that passes both checks, then more tiny bulks than it
        // announced room for: refused after at most `max_elements` of them,
        // and within `max_frame_bytes` of buffer.
        for (max_elements, max_frame_bytes) in [(1000, usize::MAX), (usize::MAX, 1000)] {
            let l = limits(|l| {
                l.max_elements = max_elements;
                l.max_frame_bytes = max_frame_bytes;
            });
            // 100 arrays of 100 tiny bulks: 10,100 elements, 60,905 bytes.
            let mut input = b"*100\r\n".to_vec();
            for _ in 0..100 {
                input.extend_from_slice(b"*100\r\n");
                input.extend(tiny.repeat(100));
            }
            for step in [1, 64, 4096] {
                let (frames, error) = feed(l, &input, step, step == 64);
                assert!(frames.is_empty());
                let (error, fed) = error.expect("refused");
                let bulks = input[..fed.min(input.len())]
                    .windows(tiny.len())
                    .filter(|w| w == tiny)
                    .count();
                if max_elements == 1000 {
                    assert_eq!(error, Error::TooManyElements { limit: 1000 });
                    assert!(bulks <= 1000 + step, "{bulks} tiny bulks buffered");
                } else {
                    assert_eq!(error, Error::FrameTooLarge { limit: 1000 });
                    assert!(fed <= 1000 + step, "{fed} bytes buffered");
                }
            }
        }
    }

    #[test]
    fn bulk_header_reads_only_whole_valid_headers() {
        assert_eq!(bulk_header(b"$5\r\nhel"), Some((4, 5)));
        assert_eq!(bulk_header(b"$0\r\n"), Some((4, 0)));
        assert_eq!(
            bulk_header(b"$9223372036854775807\r\n"),
            Some((22, i64::MAX as u64))
        );
        assert_eq!(bulk_header(b"$600000000\r\n"), Some((12, 600_000_000)));
        for bad in [
            &b""[..],
            b"$",
            b"$5",
            b"$5\r",
            b"$5\rx",
            b"$-1\r\n",
            b"$-2\r\n",
            b"$05\r\n",
            b"$\r\n",
            b"$99999999999999999999\r\n",
            b"$1x\r\n",
            b":5\r\n",
            b"*1\r\n$5\r\nhello\r\n",
        ] {
            assert_eq!(bulk_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_oversized_top_level_bulk_can_be_skipped_as_it_arrives() {
        let l = limits(|l| l.max_bulk_len = 100);
        let mut stream = b"$1000\r\n".to_vec();
        stream.extend(std::iter::repeat_n(b'z', 1000));
        stream.extend_from_slice(b"\r\n+OK\r\n");
        let mut decoder = Decoder::with_limits(l);
        let mut buf = BytesMut::new();
        let mut skip = 0;
        let mut frames = Vec::new();
        for piece in stream.chunks(64) {
            buf.extend_from_slice(piece);
            let n = skip.min(buf.len());
            buf.advance(n);
            skip -= n;
            if skip > 0 {
                continue;
            }
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(Error::BulkTooLarge {
                        len: 1000,
                        limit: 100,
                    }) => {
                        let (header, len) = bulk_header(&buf).expect("a whole header");
                        assert_eq!((header, len), (7, 1000));
                        skip = header + len as usize + 2;
                        let n = skip.min(buf.len());
                        buf.advance(n);
                        skip -= n;
                        decoder.reset();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(frames, [Frame::Simple("OK".into())]);
    }

    #[test]
    fn parse_int_is_canonical() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b"1a",
            b"--1",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn accessors() {
        assert_eq!(bulk("x").as_bulk(), Some(&Bytes::from_static(b"x")));
        assert_eq!(Frame::Integer(1).as_bulk(), None);
        assert_eq!(Frame::Integer(-2).as_int(), Some(-2));
        assert_eq!(Frame::Null.as_int(), None);
        assert_eq!(
            Frame::Array(vec![Frame::Null]).into_array(),
            Ok(vec![Frame::Null])
        );
        assert_eq!(Frame::Null.into_array(), Err(Frame::Null));
        assert!(Frame::Error("E".into()).is_error());
        assert!(!Frame::Simple("E".into()).is_error());
        assert_eq!(
            Frame::Error("E".into()).as_error(),
            Some(&Bytes::from_static(b"E"))
        );
        assert_eq!(Frame::Simple("E".into()).as_error(), None);
        let d = Decoder::with_limits(limits(|l| l.max_depth = 3));
        assert_eq!(d.limits().max_depth, 3);
        assert_eq!(Decoder::new().limits(), &Limits::default());
    }
}
