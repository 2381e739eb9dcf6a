//! Decoder limits: how much an untrusted peer may make us buffer or recurse.
//!
//! Each default mirrors a Redis server setting, so any reply a real server can
//! send is accepted and anything larger is refused before it is buffered.

/// Default largest bulk string: 512 MiB, Redis' `proto-max-bulk-len`.
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Default most elements in one array: 2^32 - 1, the most a Redis list, set or
/// hash can hold (so any `HGETALL` or `SCAN` reply fits).
pub const MAX_ARRAY_LEN: usize = u32::MAX as usize;
/// Default deepest nesting of `*N` arrays; deeper input is rejected, not recursed
/// (redis-rs uses the same 100).
pub const MAX_DEPTH: usize = 100;
/// Hard ceiling on [`Limits::max_depth`]: the decoder recurses once per level,
/// and this keeps the stack bounded whatever a caller configures.
pub const MAX_DEPTH_HARD: usize = 512;
/// Default longest simple/error/integer line: 64 KiB, Redis'
/// `PROTO_INLINE_MAX_SIZE`. Bounds the rescan cost of an unterminated line.
pub const MAX_LINE_LEN: usize = 64 * 1024;
/// Default most bytes one frame may occupy: [`MAX_BULK_LEN`] plus 1 MiB, so
/// a bulk of the largest legal size (with its header and CRLF) still fits.
///
/// The per-value limits alone do not bound a frame: `*4294967295\r\n`
/// followed by an endless stream of tiny bulks breaks none of them, yet would
/// make the caller buffer gigabytes waiting for a frame that never completes.
pub const MAX_FRAME_BYTES: usize = MAX_BULK_LEN + (1 << 20);
/// Default most elements one frame may hold, summed over all its arrays
/// however nested: 2^24 (16,777,216). Caps the `Vec<Frame>`s a frame builds
/// and, with [`MAX_FRAME_BYTES`], what a hostile peer can make us buffer; a
/// `SCAN` or `DUMP` reply holds a few thousand at most.
pub const MAX_ELEMENTS: usize = 1 << 24;

/// The limits a [`Decoder`](crate::Decoder) enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string payload in bytes.
    pub max_bulk_len: usize,
    /// Most elements in one array.
    pub max_array_len: usize,
    /// Deepest nesting of arrays (a top-level array is depth 1); clamped to
    /// [`MAX_DEPTH_HARD`].
    pub max_depth: usize,
    /// Longest simple, error or integer line, CRLF excluded.
    pub max_line_len: usize,
    /// Most bytes one frame may occupy in the buffer, complete or not: a
    /// pending frame is refused as soon as it is known to be longer (the
    /// buffer holds this many bytes of it and it is not done, or a header
    /// proves it), instead of waiting for more.
    pub max_frame_bytes: usize,
    /// Most elements one frame may hold, summed over every array in it
    /// (`*2\r\n*3\r\n...` holds 5); refused at the array header that goes
    /// over, before its elements arrive. A scalar frame holds none.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: MAX_BULK_LEN,
            max_array_len: MAX_ARRAY_LEN,
            max_depth: MAX_DEPTH,
            max_line_len: MAX_LINE_LEN,
            max_frame_bytes: MAX_FRAME_BYTES,
            max_elements: MAX_ELEMENTS,
        }
    }
}
