//! Decoder limits: how much a hostile payload may make us allocate.
//!
//! A DUMP payload is untrusted input (a compromised or buggy source, a
//! tampered dump file). Every length and count in it is checked against the
//! bytes that remain before anything is allocated, and what the decoded
//! value holds is charged to a budget. So memory stays bounded by
//! [`Limits::max_alloc`] whatever the payload claims, and LZF, which can
//! expand its input about 90-fold, cannot be used to multiply it.

/// Default longest string: 512 MiB, Redis' `proto-max-bulk-len`, the
/// largest string value (or encoded blob) a server accepts.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

/// Default budget floor: 64 MiB, enough for any value whose payload is
/// under 512 KiB, however well it compresses.
pub const MIN_ALLOC: usize = 64 * 1024 * 1024;

/// Default budget per payload byte: 128. The largest legitimate ratio of
/// decoded memory to payload bytes comes from LZF, whose back references
/// expand 3 bytes into up to 264 (88 times), plus the value model's 32-byte
/// handle per element. 128 covers real data of every type with room.
pub const ALLOC_PER_PAYLOAD_BYTE: usize = 128;

/// Hard ceiling on the default budget: 4 GiB. A single key beyond that
/// cannot come from a DUMP in practice (the server builds the payload in
/// memory); set [`Limits::max_alloc`] to go further.
pub const MAX_ALLOC: usize = (u32::MAX as usize).saturating_add(1);

/// The limits a decode enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest string, decompressed or encoded blob, in bytes.
    pub max_string_len: usize,
    /// Most bytes the decoded value may hold: element handles, decompressed
    /// strings and blobs, formatted integers. Exceeded → [`Error::Budget`](crate::Error).
    pub max_alloc: usize,
}

impl Limits {
    /// The default limits for a payload of `len` bytes: a budget of
    /// [`ALLOC_PER_PAYLOAD_BYTE`] per byte, at least [`MIN_ALLOC`] and at
    /// most [`MAX_ALLOC`].
    pub fn for_payload(len: usize) -> Limits {
        Limits {
            max_string_len: MAX_STRING_LEN,
            max_alloc: len
                .saturating_mul(ALLOC_PER_PAYLOAD_BYTE)
                .clamp(MIN_ALLOC, MAX_ALLOC),
        }
    }
}

/// What a decode may still allocate: charged as the value is built, so the
/// check comes before the allocation it pays for.
#[derive(Debug)]
pub(crate) struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget { left: limit, limit }
    }

    /// Takes `bytes` from the budget, or fails without taking any.
    pub(crate) fn charge(&mut self, bytes: usize) -> Result<(), crate::Error> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(crate::Error::Budget { limit: self.limit }),
        }
    }

    /// Takes `count` element handles of `size` bytes each.
    pub(crate) fn charge_items(&mut self, count: usize, size: usize) -> Result<(), crate::Error> {
        self.charge(count.saturating_mul(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budget_scales_with_the_payload_within_bounds() {
        assert_eq!(Limits::for_payload(0).max_alloc, MIN_ALLOC);
        assert_eq!(Limits::for_payload(1 << 20).max_alloc, 128 << 20);
        assert_eq!(Limits::for_payload(usize::MAX).max_alloc, MAX_ALLOC);
    }

    #[test]
    fn budget_refuses_at_limit_plus_one() {
        let mut budget = Budget::new(10);
        assert!(budget.charge(10).is_ok());
        assert_eq!(budget.charge(1), Err(crate::Error::Budget { limit: 10 }));
        let mut budget = Budget::new(10);
        assert!(budget.charge_items(5, 2).is_ok());
        assert!(budget.charge_items(usize::MAX, 2).is_err());
    }
}
