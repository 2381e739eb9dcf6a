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
/// queued as their own chunk. Measured by `resp/benches/resp.rs` (`encode`):
/// below about this size an extra iovec costs more than the copy.
pub const DEFAULT_INLINE_MAX: usize = 1024;

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
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        dst.put_u8(b'-');
    }
    dst.put_slice(&digits[at..]);
}

fn int_len(n: i64) -> usize {
    let mut len = usize::from(n < 0) + 1;
    let mut rest = n.unsigned_abs();
    while rest >= 10 {
        rest /= 10;
        len += 1;
    }
    len
}

/// A queue of outgoing RESP commands: contiguous where small, chunked where
/// large, so a large [`Bytes`] argument is never copied.
///
/// Build a command with [`Requests::start`] and one call per argument, or all
/// at once with [`Requests::command`]. Write it out with [`Requests::io_slices`]
/// then [`Requests::advance`] by what the socket took, or take it whole with
/// [`Requests::to_bytes`].
///
/// ```
/// use bytes::Bytes;
/// use resp::Requests;
///
/// let payload = Bytes::from(vec![7u8; 4096]); // say, a DUMP payload
/// let mut out = Requests::new();
/// out.start(4);
/// out.arg(b"RESTORE");
/// out.arg(b"key");
/// out.arg_int(0);
/// out.arg_shared(payload.clone());
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

    /// Appends an integer argument (a TTL, a cursor), formatted on the stack.
    pub fn arg_int(&mut self, n: i64) {
        let before = self.tail.len();
        header(&mut self.tail, b'$', int_len(n) as i64);
        write_int(&mut self.tail, n);
        self.tail.put_slice(b"\r\n");
        self.len += self.tail.len() - before;
    }

    /// Appends an argument that shares `arg`'s memory when it is longer than the
    /// inline threshold, and is copied otherwise.
    pub fn arg_shared(&mut self, arg: Bytes) {
        if arg.len() <= self.inline_max {
            self.arg(&arg);
            return;
        }
        let before = self.tail.len();
        header(&mut self.tail, b'$', arg.len() as i64);
        self.len += self.tail.len() - before + arg.len() + 2;
        self.seal();
        self.chunks.push_back(arg);
        self.tail.put_slice(b"\r\n");
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
        assert!(n <= self.len, "advance({n}) past the {} queued bytes", self.len);
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
