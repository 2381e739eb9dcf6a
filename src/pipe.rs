//! What crosses from the source thread to the target thread, and the bounded
//! channel that carries it. The only module that touches crossbeam.

use bytes::Bytes;

/// One key on its way from source to target.
///
/// `key` and `payload` are slices of the source connection's read buffer (or of
/// a dump file's read buffer): nothing is copied between the `DUMP` reply and
/// the `RESTORE` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The key name, binary.
    pub key: Bytes,
    /// The `DUMP` payload: the value as the source server serialises it.
    pub payload: Bytes,
    /// Absolute expiry in Unix milliseconds; 0 means the key does not expire
    /// (the same convention as `RESTORE`'s ttl argument).
    pub expire_at_ms: u64,
}
