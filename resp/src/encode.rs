//! Encoding: frames to bytes, and commands into a zero-copy write queue.
//!
//! [`Requests`] is the send side of a connection: small pieces (headers, keys,
//! integers) are appended to one contiguous tail buffer, while a large
//! [`Bytes`] argument (a `DUMP` payload) is queued as its own chunk, so it reaches
//! the socket through [`std::io::Write::write_vectored`] without being copied.
//! Below [`DEFAULT_INLINE_MAX`] bytes, copying is cheaper than another iovec.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Frame;

/// Arguments at most this long are copied into the tail buffer; longer ones are
/// queued as their own chunk (iovec).
///
/// Measured by `resp/benches/resp.rs` (`inline/{copy,iovec}/N`: 256 RESTOREs
/// written to a Unix socket, 2026-11-24 run on a shared 2-core Xeon): copying
/// won at 256 B (0.95 vs 0.75 GiB/s) and the separate iovec won from 512 B up
/// (1.14 vs 0.84 GiB/s at 512 B, 1.9 vs 1.0 at 1 KiB, 6.1 vs 2.2 at 16 KiB).
/// The crossover lies between 256 and 512 bytes.
pub const DEFAULT_INLINE_MAX: usize = 256;

/// Most iovecs handed to one `write_vectored` call (Linux `IOV_MAX`).
pub const IOV_MAX: usize = 1024;

/// Appends the RESP2 encoding of `frame` to `dst`.
pub fn encode(frame: &Frame, dst: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => line(dst, b'+', s),
        Frame::Error(e) => line(dst, b'-', e),
        Frame::Integer(n) => {
            dst.put_u8(b':');
            write_int(dst, *n);
            dst.put_slice(b"\r\n");
        }
        Frame::Bulk(b) => {
            header(dst, b'$', b.len() as i64);
            dst.put_slice(b);
            dst.put_slice(b"\r\n");
        }
        Frame::Null => dst.put_slice(b"$-1\r\n"),
        Frame::NullArray => dst.put_slice(b"*-1\r\n"),
        Frame::Array(items) => {
            header(dst, b'*', items.len() as i64);
            for item in items {
                encode(item, dst);
            }
        }
    }
}

/// The number of bytes [`encode`] appends for `frame`.
pub fn encoded_len(frame: &Frame) -> usize {
    match frame {
        Frame::Simple(s) | Frame::Error(s) => 1 + s.len() + 2,
        Frame::Integer(n) => 1 + int_len(*n) + 2,
        Frame::Bulk(b) => 1 + int_len(b.len() as i64) + 2 + b.len() + 2,
        Frame::Null | Frame::NullArray => 5,
        Frame::Array(items) => {
            1 + int_len(items.len() as i64) + 2 + items.iter().map(encoded_len).sum::<usize>()
        }
    }
}

fn line(dst: &mut BytesMut, kind: u8, text: &[u8]) {
    dst.reserve(text.len() + 3);
    dst.put_u8(kind);
    dst.put_slice(text);
    dst.put_slice(b"\r\n");
}

fn header(dst: &mut BytesMut, kind: u8, n: i64) {
    dst.reserve(24);
    dst.put_u8(kind);
    write_int(dst, n);
    dst.put_slice(b"\r\n");
}

/// Appends the decimal form of `n` to `dst`, formatted on the stack.
pub fn write_int(dst: &mut BytesMut, n: i64) {
    if n < 0 {
        dst.put_u8(b'-');
    }
    write_uint(dst, n.unsigned_abs());
}

/// Appends the decimal form of `n` to `dst`, formatted on the stack.
fn write_uint(dst: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let at = format_digits(&mut digits, n);
    dst.put_slice(&digits[at..]);
}

/// Writes the decimal digits of `n` at the end of `digits`; returns where
/// they start.
#[inline]
fn format_digits(digits: &mut [u8; 20], n: u64) -> usize {
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    at
}

fn int_len(n: i64) -> usize {
    usize::from(n < 0) + uint_len(n.unsigned_abs())
}

fn uint_len(n: u64) -> usize {
    let mut len = 1;
    let mut rest = n;
    while rest >= 10 {
        rest /= 10;
        len += 1;
    }
    len
}

/// A queue of outgoing RESP commands: contiguous where small, chunked where
/// large, so a large [`Bytes`] argument is never copied.
///
/// Build a command with [`Requests::cmd`], which counts the arguments for
/// you (the preferred way), or all at once with [`Requests::command`]. The
/// lower-level [`Requests::start`] plus one `arg*` call per argument leaves
/// the count to the caller. Write the queue out with [`Requests::io_slices`]
/// then [`Requests::advance`] by what the socket took, or take it whole with
/// [`Requests::to_bytes`].
///
/// ```
/// use bytes::Bytes;
/// use resp::Requests;
///
/// let payload = Bytes::from(vec![7u8; 4096]); // say, a DUMP payload
/// let mut out = Requests::new();
/// out.cmd().arg(b"RESTORE").arg(b"key").int(0).shared(payload.clone()).send();
/// let mut slices = Vec::new();
/// out.io_slices(&mut slices);
/// // header, the payload itself (same memory), then the trailing CRLF
/// assert_eq!(slices.len(), 3);
/// assert_eq!(slices[1].as_ptr(), payload.as_ptr());
/// ```
#[derive(Debug)]
pub struct Requests {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    inline_max: usize,
    len: usize,
    /// While a [`Command`](crate::Command) is being built: its shared
    /// arguments, each with the offset in `tail` where it goes. Kept (empty)
    /// between commands so its capacity is reused.
    pub(crate) deferred: Vec<(usize, Bytes)>,
}

impl Default for Requests {
    fn default() -> Self {
        Self::new()
    }
}

impl Requests {
    /// An empty queue that copies arguments up to [`DEFAULT_INLINE_MAX`] bytes.
    pub fn new() -> Self {
        Self::with_inline_max(DEFAULT_INLINE_MAX)
    }

    /// An empty queue that copies [`Requests::arg_shared`] arguments up to
    /// `inline_max` bytes and queues longer ones as their own chunk.
    pub fn with_inline_max(inline_max: usize) -> Self {
        Requests {
            chunks: VecDeque::new(),
            tail: BytesMut::with_capacity(16 * 1024),
            inline_max,
            len: 0,
            deferred: Vec::new(),
        }
    }

    /// Bytes queued and not yet [`advance`](Requests::advance)d past.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a whole command whose arguments are all copied.
    pub fn command(&mut self, args: &[&[u8]]) {
        self.start(args.len());
        for arg in args {
            self.arg(arg);
        }
    }

    /// Starts a command of `argc` arguments; exactly `argc` `arg*` calls follow.
    /// Prefer [`Requests::cmd`], which counts them.
    pub fn start(&mut self, argc: usize) {
        let before = self.tail.len();
        header(&mut self.tail, b'*', argc as i64);
        self.len += self.tail.len() - before;
    }

    /// Appends an argument, copied.
    pub fn arg(&mut self, arg: &[u8]) {
        let before = self.tail.len();
        header(&mut self.tail, b'$', arg.len() as i64);
        self.tail.extend_from_slice(arg);
        self.tail.put_slice(b"\r\n");
        self.len += self.tail.len() - before;
    }

    /// Appends an integer argument (a TTL), formatted on the stack.
    pub fn arg_int(&mut self, n: i64) {
        self.arg_number(n < 0, n.unsigned_abs());
    }

    /// Appends an unsigned integer argument (a `SCAN` cursor, which is a
    /// `u64` on the wire), formatted on the stack.
    pub fn arg_uint(&mut self, n: u64) {
        self.arg_number(false, n);
    }

    /// Appends the decimal argument `-magnitude` or `magnitude`.
    fn arg_number(&mut self, negative: bool, magnitude: u64) {
        let before = self.tail.len();
        header(
            &mut self.tail,
            b'$',
            (usize::from(negative) + uint_len(magnitude)) as i64,
        );
        if negative {
            self.tail.put_u8(b'-');
        }
        write_uint(&mut self.tail, magnitude);
        self.tail.put_slice(b"\r\n");
        self.len += self.tail.len() - before;
    }

    /// Appends an argument that shares `arg`'s memory when it is longer than the
    /// inline threshold, and is copied otherwise.
    pub fn arg_shared(&mut self, arg: Bytes) {
        self.shared(arg, false);
    }

    /// [`Requests::arg_shared`]; inside a [`Command`](crate::Command)
    /// (`defer`) the payload is only recorded, with its place in the tail,
    /// and queued by [`Requests::finish_command`].
    #[inline]
    fn shared(&mut self, arg: Bytes, defer: bool) {
        if arg.len() <= self.inline_max {
            self.arg(&arg);
            return;
        }
        let before = self.tail.len();
        header(&mut self.tail, b'$', arg.len() as i64);
        self.len += self.tail.len() - before + arg.len() + 2;
        if defer {
            self.deferred.push((self.tail.len(), arg));
        } else {
            self.seal();
            self.chunks.push_back(arg);
        }
        self.tail.put_slice(b"\r\n");
    }

    /// Starts a [`Command`](crate::Command): writes a one-digit count `*0\r\n`
    /// that [`Requests::finish_command`] corrects, and returns where it is.
    /// Its arguments are appended as usual, except shared ones (see
    /// [`Requests::defer_shared`]), so the tail stays one buffer to patch.
    pub(crate) fn begin_command(&mut self) -> usize {
        let start = self.tail.len();
        self.tail.extend_from_slice(b"*0\r\n");
        self.len += 4;
        start
    }

    /// [`Requests::arg_shared`] inside a command: see [`Requests::shared`].
    pub(crate) fn defer_shared(&mut self, arg: Bytes) {
        self.shared(arg, true);
    }

    /// Ends the command begun at `start` with `argc` arguments: writes the
    /// real count (moving the arguments when it has more than one digit) and
    /// queues the deferred payloads as their own chunks.
    pub(crate) fn finish_command(&mut self, start: usize, argc: usize) {
        let mut digits = [0u8; 20];
        let at = format_digits(&mut digits, argc as u64);
        let digits = &digits[at..];
        // The slot holds one digit; make room for the others.
        let shift = digits.len() - 1;
        if shift > 0 {
            let end = self.tail.len();
            self.tail.resize(end + shift, 0);
            self.tail.copy_within(start + 4..end, start + 4 + shift);
            self.tail[start + 2 + shift..start + 4 + shift].copy_from_slice(b"\r\n");
            self.len += shift;
        }
        self.tail[start + 1..start + 2 + shift].copy_from_slice(digits);
        let mut sealed = 0;
        for (at, arg) in self.deferred.drain(..) {
            let at = at + shift;
            self.chunks
                .push_back(self.tail.split_to(at - sealed).freeze());
            self.chunks.push_back(arg);
            sealed = at;
        }
    }

    /// Forgets the command begun at `start`, when `len` was queued before it.
    pub(crate) fn abandon_command(&mut self, start: usize, len: usize) {
        self.tail.truncate(start);
        self.deferred.clear();
        self.len = len;
    }

    /// Moves the tail buffer into the chunk queue.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Fills `out` with the queued bytes in order, at most [`IOV_MAX`] slices,
    /// for one `write_vectored` call. Clears `out` first.
    pub fn io_slices<'a>(&'a mut self, out: &mut Vec<IoSlice<'a>>) {
        self.seal();
        out.clear();
        out.extend(
            self.chunks
                .iter()
                .take(IOV_MAX)
                .map(|chunk| IoSlice::new(chunk)),
        );
    }

    /// The first queued chunk, for a plain `write` (e.g. over TLS); empty when
    /// nothing is queued.
    pub fn front(&mut self) -> &[u8] {
        self.seal();
        self.chunks.front().map(|c| &c[..]).unwrap_or_default()
    }

    /// Drops the first `n` queued bytes: the ones a write just sent.
    ///
    /// # Panics
    ///
    /// If `n` is more than [`Requests::len`].
    pub fn advance(&mut self, mut n: usize) {
        assert!(
            n <= self.len,
            "advance({n}) past the {} queued bytes",
            self.len
        );
        self.seal();
        self.len -= n;
        while n > 0 {
            let front = self
                .chunks
                .front_mut()
                .expect("len counts the queued chunks");
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// Everything queued as one contiguous buffer (copies; for tests and small
    /// writes). Leaves the queue unchanged.
    pub fn to_bytes(&mut self) -> Bytes {
        self.seal();
        if self.chunks.len() == 1 {
            return self.chunks[0].clone();
        }
        let mut all = BytesMut::with_capacity(self.len);
        for chunk in &self.chunks {
            all.extend_from_slice(chunk);
        }
        all.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(frame, &mut dst);
        assert_eq!(dst.len(), encoded_len(frame), "encoded_len {frame:?}");
        dst.to_vec()
    }

    /// Every queued byte, in order, as `io_slices` hands them out.
    fn iov_concat(out: &mut Requests) -> Vec<u8> {
        let mut slices = Vec::new();
        out.io_slices(&mut slices);
        slices.iter().flat_map(|s| s.iter().copied()).collect()
    }

    fn payload(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7) as u8).collect::<Vec<u8>>().into()
    }

    #[test]
    fn every_frame_type_encodes() {
        let cases: [(Frame, &[u8]); 10] = [
            (Frame::Simple("OK".into()), b"+OK\r\n"),
            (Frame::Error("ERR x".into()), b"-ERR x\r\n"),
            (Frame::Integer(-2), b":-2\r\n"),
            (Frame::Integer(i64::MIN), b":-9223372036854775808\r\n"),
            (Frame::Bulk("foo".into()), b"$3\r\nfoo\r\n"),
            (Frame::Bulk("".into()), b"$0\r\n\r\n"),
            (Frame::Null, b"$-1\r\n"),
            (Frame::NullArray, b"*-1\r\n"),
            (Frame::Array(vec![]), b"*0\r\n"),
            (
                Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![Frame::Null])]),
                b"*2\r\n:1\r\n*1\r\n$-1\r\n",
            ),
        ];
        for (frame, bytes) in cases {
            assert_eq!(encoded(&frame), bytes, "{frame:?}");
        }
    }

    #[test]
    fn write_int_formats_every_width() {
        let mut n: i64 = 1;
        let mut values = vec![0, i64::MIN, i64::MAX, -1];
        for _ in 0..19 {
            values.extend([n - 1, n, -n, -(n - 1)]);
            n = n.saturating_mul(10);
        }
        for v in values {
            let mut dst = BytesMut::new();
            write_int(&mut dst, v);
            assert_eq!(&dst[..], v.to_string().as_bytes());
            assert_eq!(int_len(v), v.to_string().len(), "{v}");
            let u = v.unsigned_abs();
            let mut dst = BytesMut::new();
            write_uint(&mut dst, u);
            assert_eq!(&dst[..], u.to_string().as_bytes());
            assert_eq!(uint_len(u), u.to_string().len(), "{u}");
        }
    }

    #[test]
    fn command_is_an_array_of_bulks() {
        let mut out = Requests::new();
        assert!(out.is_empty());
        out.command(&[b"SET", b"k", b""]);
        let expected = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
        assert_eq!(&out.to_bytes()[..], expected);
        assert_eq!(out.len(), expected.len());
        assert!(!out.is_empty());
        // to_bytes leaves the queue as it was.
        assert_eq!(&out.to_bytes()[..], expected);
        assert_eq!(out.front(), expected);
    }

    /// A one-argument command `write` builds encodes its argument as `text`.
    fn one_arg(write: impl FnOnce(&mut Requests), text: &str) {
        let mut out = Requests::new();
        out.start(1);
        write(&mut out);
        let expected = format!("*1\r\n${}\r\n{text}\r\n", text.len());
        assert_eq!(&out.to_bytes()[..], expected.as_bytes());
        assert_eq!(out.len(), expected.len());
    }

    #[test]
    fn arg_int_and_arg_uint_format_extremes() {
        for (n, text) in [
            (i64::MIN, "-9223372036854775808"),
            (-1, "-1"),
            (0, "0"),
            (i64::MAX, "9223372036854775807"),
        ] {
            one_arg(|out| out.arg_int(n), text);
        }
        for (n, text) in [
            (0, "0"),
            (9, "9"),
            (10, "10"),
            (i64::MAX as u64 + 1, "9223372036854775808"),
            (u64::MAX, "18446744073709551615"),
        ] {
            one_arg(|out| out.arg_uint(n), text);
        }
    }

    #[test]
    fn arg_shared_copies_up_to_the_threshold_and_shares_above() {
        for inline_max in [0, 16, DEFAULT_INLINE_MAX] {
            for len in [
                inline_max.saturating_sub(1),
                inline_max,
                inline_max + 1,
                inline_max * 4 + 3,
            ] {
                let data = payload(len);
                let mut out = Requests::with_inline_max(inline_max);
                out.start(2);
                out.arg(b"K");
                out.arg_shared(data.clone());
                let mut slices = Vec::new();
                out.io_slices(&mut slices);
                let shared = slices
                    .iter()
                    .any(|s| s.as_ptr() == data.as_ptr() && s.len() == len);
                if len > inline_max {
                    // Header, the payload itself (same memory), trailing CRLF.
                    assert!(shared, "len {len} > {inline_max} must not be copied");
                    assert_eq!(slices.len(), 3);
                    assert_eq!(slices[1].as_ptr(), data.as_ptr());
                    assert_eq!(&slices[2][..], b"\r\n");
                } else {
                    assert!(!shared || len == 0, "len {len} <= {inline_max} is copied");
                    assert_eq!(slices.len(), 1);
                }
                let mut expected = format!("*2\r\n$1\r\nK\r\n${len}\r\n").into_bytes();
                expected.extend_from_slice(&data);
                expected.extend_from_slice(b"\r\n");
                assert_eq!(iov_concat(&mut out), expected);
                assert_eq!(&out.to_bytes()[..], &expected[..]);
                assert_eq!(out.len(), expected.len());
            }
        }
    }

    /// A RESTORE pipeline with mixed small and large payloads, plus the bytes
    /// it must put on the wire.
    fn restore_queue(inline_max: usize) -> (Requests, Vec<u8>, Vec<Bytes>) {
        let mut out = Requests::with_inline_max(inline_max);
        let mut expected = Vec::new();
        let mut payloads = Vec::new();
        for (i, len) in [10, 1500, 3, 3000, 0, 2000].into_iter().enumerate() {
            let data = payload(len);
            let key = format!("key:{i}");
            out.start(6);
            out.arg(b"RESTORE");
            out.arg(key.as_bytes());
            out.arg_int(-1 + i as i64);
            out.arg_shared(data.clone());
            out.arg(b"REPLACE");
            out.arg(b"ABSTTL");
            let ttl = (-1 + i as i64).to_string();
            expected.extend_from_slice(
                format!(
                    "*6\r\n$7\r\nRESTORE\r\n${}\r\n{key}\r\n${}\r\n{ttl}\r\n${len}\r\n",
                    key.len(),
                    ttl.len()
                )
                .as_bytes(),
            );
            expected.extend_from_slice(&data);
            expected.extend_from_slice(b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n");
            payloads.push(data);
        }
        (out, expected, payloads)
    }

    #[test]
    fn io_slices_are_in_order_and_share_large_payloads() {
        let (mut out, expected, payloads) = restore_queue(1024);
        assert_eq!(out.len(), expected.len());
        assert_eq!(iov_concat(&mut out), expected);
        assert_eq!(&out.to_bytes()[..], &expected[..]);
        let mut slices = Vec::new();
        out.io_slices(&mut slices);
        // Small chunks alternate with the three shared payloads, in order.
        let shared: Vec<usize> = payloads
            .iter()
            .filter(|p| p.len() > 1024)
            .map(|p| {
                slices
                    .iter()
                    .position(|s| s.as_ptr() == p.as_ptr())
                    .expect("shared")
            })
            .collect();
        assert_eq!(shared.len(), 3);
        assert!(shared.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            slices.len(),
            7,
            "header, payload, header, payload, header, payload, tail"
        );
    }

    #[test]
    fn advance_across_chunk_boundaries_and_partial_chunks() {
        for step in [1, 2, 7, 13, 100, 1023, 4096, usize::MAX] {
            let (mut out, expected, _) = restore_queue(1024);
            let mut sent = 0;
            while !out.is_empty() {
                // What a socket would take: up to `step` bytes of the front chunk
                // or across several chunks (write_vectored may take many).
                let n = step.min(out.len());
                out.advance(n);
                sent += n;
                assert_eq!(out.len(), expected.len() - sent, "step {step}");
                assert_eq!(
                    iov_concat(&mut out),
                    &expected[sent..],
                    "step {step} at {sent}"
                );
            }
            assert_eq!(sent, expected.len());
            assert!(out.front().is_empty());
        }
    }

    #[test]
    fn advance_by_front_chunks_like_plain_writes() {
        let (mut out, expected, _) = restore_queue(1024);
        let mut sent = Vec::new();
        while !out.is_empty() {
            // A plain write that takes half of the front chunk (at least 1).
            let front = out.front();
            let n = (front.len() / 2).max(1);
            sent.extend_from_slice(&front[..n]);
            out.advance(n);
        }
        assert_eq!(sent, expected);
    }

    #[test]
    fn commands_queued_after_a_partial_write_follow_the_rest() {
        let (mut out, mut expected, _) = restore_queue(1024);
        out.advance(100);
        expected.drain(..100);
        out.command(&[b"PING"]);
        expected.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(iov_concat(&mut out), expected);
        assert_eq!(&out.to_bytes()[..], &expected[..]);
        out.advance(out.len());
        assert!(out.is_empty());
        assert!(out.to_bytes().is_empty());
    }

    #[test]
    fn io_slices_stop_at_iov_max() {
        let mut out = Requests::with_inline_max(0);
        out.start(IOV_MAX);
        for _ in 0..IOV_MAX {
            out.arg_shared(Bytes::from_static(b"x"));
        }
        let total = out.len();
        let first: usize = {
            let mut slices = Vec::new();
            out.io_slices(&mut slices);
            assert_eq!(slices.len(), IOV_MAX);
            slices.iter().map(|s| s.len()).sum()
        };
        assert!(first < total);
        out.advance(first);
        // 2 * IOV_MAX + 1 chunks in all: two more full calls drain them.
        let mut calls = 1;
        while !out.is_empty() {
            let mut slices = Vec::new();
            out.io_slices(&mut slices);
            assert!(slices.len() <= IOV_MAX);
            let n = slices.iter().map(|s| s.len()).sum();
            out.advance(n);
            calls += 1;
        }
        assert_eq!(calls, 3);
    }

    #[test]
    #[should_panic(expected = "past the")]
    fn advance_past_the_end_panics() {
        let mut out = Requests::new();
        out.command(&[b"PING"]);
        out.advance(out.len() + 1);
    }
}
