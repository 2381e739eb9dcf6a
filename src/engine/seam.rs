//! Where two lanes meet ([`crate::engine::lanes`]): the keys both return,
//! returned once.
//!
//! A SCAN call goes on visiting buckets until it has COUNT keys, so the last
//! call of a lane runs past the lane's end into the next lane's first
//! buckets, which that lane scans too. Only that call crosses: every
//! earlier one stopped before the end, or the lane would have ended there.
//! And the buckets it crossed into hold fewer than COUNT keys (it stopped
//! once it had COUNT), which the next lane finds in its first calls.
//!
//! So the seam keeps the hashes of the keys the later lane returns first
//! (its *head*, a bounded number), and when the earlier lane's last call
//! arrives, drops from it every key the head holds. The rest of that call's
//! keys are copied now; if the later lane has not yet scanned as far as that
//! call reached, they are kept (the *tail*) and dropped from the later
//! lane's calls until it has. A key is in one bucket, so one key returned by
//! both lanes is the same key, and is read once.
//!
//! Keys are held as 128-bit hashes keyed at random per run (no key can be
//! made to collide on purpose), a few hundred KiB per seam at most.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;

/// Most hashes kept of a later lane's first keys: twice the most a SCAN
/// returns, and then some, which covers what an earlier lane's last call
/// can have crossed into.
const HEAD_MAX: usize = 2 * crate::engine::scan::MAX_SCAN_COUNT as usize + 1_000;

/// Two random keys for 128-bit key hashes.
#[derive(Debug, Clone, Default)]
pub struct KeyHasher(RandomState, RandomState);

impl KeyHasher {
    fn hash(&self, key: &[u8]) -> u128 {
        (u128::from(self.0.hash_one(key)) << 64) | u128::from(self.1.hash_one(key))
    }
}

/// The boundary between one lane and the next.
#[derive(Debug, Clone)]
pub struct Seam {
    /// The later lane's first keys, while the earlier lane still runs.
    head: Option<HashSet<u128>>,
    /// After the earlier lane's last call: how far it reached (bit-reversed
    /// cursor) and its keys the later lane may still return.
    tail: Option<(u64, HashSet<u128>)>,
}

impl Default for Seam {
    fn default() -> Seam {
        Seam {
            head: Some(HashSet::new()),
            tail: None,
        }
    }
}

impl Seam {
    /// A reply of the later lane, to a SCAN sent at (reversed) `from` that
    /// took it to `to` (`u64::MAX` when the lane is done): keys the earlier
    /// lane already returned are dropped from `keys`.
    pub fn later_reply(&mut self, hasher: &KeyHasher, from: u64, to: u64, keys: &mut Vec<Bytes>) {
        if let Some((reach, tail)) = &mut self.tail {
            if from < *reach {
                keys.retain(|k| !tail.remove(&hasher.hash(k)));
            }
            if to >= *reach || tail.is_empty() {
                self.tail = None;
            }
        }
        if let Some(head) = &mut self.head {
            for key in keys.iter() {
                if head.len() >= HEAD_MAX {
                    break;
                }
                head.insert(hasher.hash(key));
            }
        }
    }

    /// The earlier lane's last call returned `keys`, reaching (reversed)
    /// `reach`; the later lane is at `later_at` (`u64::MAX` when done).
    /// Keys the later lane already returned are dropped from `keys`.
    pub fn earlier_done(
        &mut self,
        hasher: &KeyHasher,
        reach: u64,
        later_at: u64,
        keys: &mut Vec<Bytes>,
    ) {
        let head = self.head.take().unwrap_or_default();
        let mut rest = HashSet::new();
        keys.retain(|k| {
            let h = hasher.hash(k);
            if head.contains(&h) {
                return false;
            }
            rest.insert(h);
            true
        });
        if later_at < reach && !rest.is_empty() {
            self.tail = Some((reach, rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Bytes> {
        names
            .iter()
            .map(|n| Bytes::copy_from_slice(n.as_bytes()))
            .collect()
    }

    #[test]
    fn keys_the_later_lane_returned_first_are_dropped_from_the_last_call() {
        let h = KeyHasher::default();
        let mut seam = Seam::default();
        let mut first = keys(&["b1", "b2", "b3"]);
        seam.later_reply(&h, 100, 200, &mut first);
        assert_eq!(first.len(), 3);
        let mut last = keys(&["a9", "b1", "b2"]);
        seam.earlier_done(&h, 150, 200, &mut last);
        assert_eq!(last, keys(&["a9"]));
    }

    #[test]
    fn keys_the_last_call_returned_first_are_dropped_from_the_later_lane() {
        let h = KeyHasher::default();
        let mut seam = Seam::default();
        let mut last = keys(&["a9", "b1", "b2"]);
        // The later lane has not started: it is at its start, 100.
        seam.earlier_done(&h, 150, 100, &mut last);
        assert_eq!(last.len(), 3);
        let mut first = keys(&["b1", "b2", "b3"]);
        seam.later_reply(&h, 100, 160, &mut first);
        assert_eq!(first, keys(&["b3"]));
        // Past the reach: nothing more is dropped.
        let mut next = keys(&["a9"]);
        seam.later_reply(&h, 160, 300, &mut next);
        assert_eq!(next.len(), 1);
    }

    #[test]
    fn the_head_is_bounded() {
        let h = KeyHasher::default();
        let mut seam = Seam::default();
        let names: Vec<String> = (0..HEAD_MAX + 10).map(|i| format!("k{i}")).collect();
        let mut many: Vec<Bytes> = names.iter().map(|n| Bytes::from(n.clone())).collect();
        seam.later_reply(&h, 0, 10, &mut many);
        assert_eq!(seam.head.as_ref().map(HashSet::len), Some(HEAD_MAX));
    }
}
