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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: MAX_BULK_LEN,
            max_array_len: MAX_ARRAY_LEN,
            max_depth: MAX_DEPTH,
            max_line_len: MAX_LINE_LEN,
        }
    }
}
