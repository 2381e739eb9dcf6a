//! Several SCANs in flight on one node: the cursor space cut into lanes,
//! each a chain of SCAN calls of its own.
//!
//! One SCAN chain gives at most COUNT keys per round trip, since each call
//! needs the cursor the last one returned. Across 80 ms that is far below
//! what the servers carry, and COUNT cannot grow without bound (one call
//! blocks the source for its whole COUNT). So a far source is scanned along
//! several chains at once.
//!
//! Why the cut is exact. Redis and Valkey visit their table's buckets in
//! the order of the bucket index with its bits reversed: the cursor, bit
//! reversed, only ever grows, from 0 up to 2^64 where it wraps to 0, and
//! a table that grows or shrinks between calls keeps that order (that is
//! why SCAN returns every key that stays, whatever the resizes). Cutting the
//! reversed space into `n` equal ranges (`n` a power of two) therefore cuts
//! the buckets into disjoint sets, as long as the table has at least `n`
//! buckets: lane `i` starts at the cursor whose reversed value is
//! `i × 2^64 / n` and is done when its reversed cursor reaches the next
//! lane's start (or wraps to 0, for the last lane). A table with fewer
//! buckets than lanes makes neighbouring lanes visit the same buckets: keys
//! are then returned twice, never missed. Lanes are used only on sources
//! with many keys (see [`KEYS_PER_LANE`]), whose tables stay far above
//! 16 buckets unless nearly every key is deleted during the scan.
//!
//! One SCAN call goes on past its lane's end until it has COUNT keys, so
//! each lane's last call also returns some of the next lane's first keys;
//! [`crate::engine::seam`] returns those once.
//!
//! A server whose reversed cursor goes backwards does not scan this way (a
//! proxy, another implementation): its lanes are given up for a single
//! chain from cursor 0 (see [`Lanes::on_reply`]).

use bytes::Bytes;

use crate::engine::seam::{KeyHasher, Seam};

/// Most lanes of one node: sixteen 10,000-key SCANs in flight carry about
/// 2M keys a second at 80 ms, far past what one server serves.
pub const MAX_LANES: usize = 16;

/// Fewest keys per lane (DBSIZE at start): four of the largest SCANs, so
/// that a lane's last call, which runs on past the lane's end until it has
/// COUNT keys, crosses only into the next lane ([`crate::engine::seam`]).
pub const KEYS_PER_LANE: u64 = 4 * crate::engine::scan::MAX_SCAN_COUNT as u64;

/// How many lanes a node of `dbsize` keys gets when one SCAN chain cannot
/// carry what the round trip needs: as many as it has keys for, at most
/// [`MAX_LANES`]. A power of two; 1 means a single chain.
pub fn lanes_for_keys(dbsize: u64) -> usize {
    let n = usize::try_from(dbsize / KEYS_PER_LANE).unwrap_or(MAX_LANES);
    let n = n.clamp(1, MAX_LANES);
    1 << n.ilog2()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneState {
    Ready,
    InFlight,
    Done,
}

#[derive(Debug, Clone)]
struct Lane {
    /// The cursor to send next, verbatim.
    cursor: Bytes,
    /// Its value bit reversed: where the lane is in the reversed order.
    at: u64,
    /// Where the next lane starts (reversed), or `None` for the last lane
    /// (it ends when the cursor wraps to 0).
    end: Option<u64>,
    state: LaneState,
}

/// What a SCAN reply did to its lane.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The lane goes on (or is done).
    Ok,
    /// The cursor went backwards: the server does not scan in reversed
    /// order, and the lanes were replaced by one chain from cursor 0.
    NotReversed,
}

/// The SCAN chains of one node.
#[derive(Debug, Clone)]
pub struct Lanes {
    lanes: Vec<Lane>,
    /// The lanes a fresh scan starts with (1 for a single verbatim chain).
    count: usize,
    /// A single chain: its cursor is passed through verbatim and never read
    /// as a number (a cluster node's or a resumed cursor).
    verbatim: bool,
    /// Bumped whenever the lanes start over: a reply to a SCAN sent before
    /// that still brings keys, but its cursor means nothing now.
    generation: u32,
    /// Seam `k` is between lane `k` and lane `k + 1`.
    seams: Vec<Seam>,
    hasher: KeyHasher,
}

impl Lanes {
    /// One chain from `cursor`, passed through verbatim (a resumed scan, a
    /// cluster node, a small or unknown server).
    pub fn single(cursor: &str) -> Lanes {
        Lanes {
            lanes: vec![Lane {
                cursor: Bytes::copy_from_slice(cursor.as_bytes()),
                at: 0,
                end: None,
                state: LaneState::Ready,
            }],
            count: 1,
            verbatim: true,
            generation: 0,
            seams: Vec::new(),
            hasher: KeyHasher::default(),
        }
    }

    /// `count` lanes (rounded down to a power of two, at most
    /// [`MAX_LANES`]) over the whole cursor space, from the start.
    pub fn split(count: usize) -> Lanes {
        let count = count.clamp(1, MAX_LANES);
        let count = 1 << count.ilog2();
        let mut lanes = Lanes {
            lanes: Vec::new(),
            count,
            verbatim: false,
            generation: 0,
            seams: Vec::new(),
            hasher: KeyHasher::default(),
        };
        lanes.reset();
        lanes
    }

    /// Starts the scan over from the beginning, every lane at its start.
    pub fn reset(&mut self) {
        let generation = self.generation.wrapping_add(1);
        if self.verbatim {
            *self = Lanes::single("0");
            self.generation = generation;
            return;
        }
        self.generation = generation;
        self.seams = vec![Seam::default(); self.count - 1];
        let width = 1u128 << 64;
        let step = width / self.count as u128;
        self.lanes = (0..self.count)
            .map(|i| {
                let start = (i as u128 * step) as u64;
                let end = ((i + 1) as u128 * step < width).then(|| ((i + 1) as u128 * step) as u64);
                Lane {
                    cursor: Bytes::from(start.reverse_bits().to_string()),
                    at: start,
                    end,
                    state: LaneState::Ready,
                }
            })
            .collect();
    }

    /// The lanes' generation, to send with each SCAN and give back with its
    /// reply.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// How many lanes a fresh scan has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// A lane that may send its next SCAN, the one furthest behind first.
    pub fn next_ready(&self) -> Option<usize> {
        self.lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.state == LaneState::Ready)
            .min_by_key(|(_, l)| l.at.wrapping_sub(self.start_of(l)))
            .map(|(i, _)| i)
    }

    fn start_of(&self, lane: &Lane) -> u64 {
        if self.verbatim {
            return 0;
        }
        let step = ((1u128 << 64) / self.count as u128) as u64;
        lane.at - lane.at % step.max(1)
    }

    /// The cursor lane `i` sends next.
    pub fn cursor(&self, i: usize) -> Option<&Bytes> {
        self.lanes.get(i).map(|l| &l.cursor)
    }

    /// Lane `i`'s SCAN was sent.
    pub fn sent(&mut self, i: usize) {
        if let Some(lane) = self.lanes.get_mut(i) {
            lane.state = LaneState::InFlight;
        }
    }

    /// SCANs in flight.
    pub fn in_flight(&self) -> usize {
        self.lanes
            .iter()
            .filter(|l| l.state == LaneState::InFlight)
            .count()
    }

    /// True when every lane has reached its end.
    pub fn is_done(&self) -> bool {
        self.lanes.iter().all(|l| l.state == LaneState::Done)
    }

    /// Ends every lane: a node that only adopts keys scans nothing.
    pub fn finish(&mut self) {
        for lane in &mut self.lanes {
            lane.state = LaneState::Done;
        }
    }

    /// The connection was lost: SCANs in flight are sent again with the
    /// same cursors.
    pub fn lost(&mut self) {
        for lane in &mut self.lanes {
            if lane.state == LaneState::InFlight {
                lane.state = LaneState::Ready;
            }
        }
    }

    /// Lane `i`'s SCAN, sent in `generation`, returned `cursor` (text of a
    /// u64, checked by the caller as `value`) and `keys`, from which keys
    /// another lane returned too are dropped. A reply of an earlier
    /// generation changes nothing.
    pub fn on_reply(
        &mut self,
        i: usize,
        generation: u32,
        cursor: Bytes,
        value: u64,
        keys: &mut Vec<Bytes>,
    ) -> Step {
        if generation != self.generation {
            return Step::Ok;
        }
        let verbatim = self.verbatim;
        let Some(lane) = self.lanes.get_mut(i) else {
            return Step::Ok;
        };
        if verbatim {
            lane.state = if value == 0 {
                LaneState::Done
            } else {
                LaneState::Ready
            };
            lane.cursor = cursor;
            return Step::Ok;
        }
        let from = lane.at;
        // Where the call reached, bit reversed; `u64::MAX` for a wrap to 0.
        let reach = if value == 0 {
            u64::MAX
        } else {
            value.reverse_bits()
        };
        if reach < from {
            *self = Lanes::single("0");
            self.generation = generation.wrapping_add(1);
            return Step::NotReversed;
        }
        let done = value == 0 || lane.end.is_some_and(|end| reach >= end);
        if done {
            lane.state = LaneState::Done;
        } else {
            lane.at = reach;
            lane.cursor = cursor;
            lane.state = LaneState::Ready;
        }
        let to = if done { u64::MAX } else { reach };
        if let Some(seam) = i.checked_sub(1).and_then(|k| self.seams.get_mut(k)) {
            seam.later_reply(&self.hasher, from, to, keys);
        }
        if done {
            let later_at = self.lanes.get(i + 1).map_or(u64::MAX, |l| {
                if l.state == LaneState::Done {
                    u64::MAX
                } else {
                    l.at
                }
            });
            if let Some(seam) = self.seams.get_mut(i) {
                seam.earlier_done(&self.hasher, reach, later_at, keys);
            }
        }
        Step::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Redis table of `2^bits` buckets, scanned as `dictScan` does.
    fn next_cursor(cursor: u64, bits: u32) -> u64 {
        let mask = (1u64 << bits) - 1;
        let v = cursor | !mask;
        v.reverse_bits().wrapping_add(1).reverse_bits()
    }

    fn cursor_of(lanes: &Lanes, i: usize) -> u64 {
        std::str::from_utf8(lanes.cursor(i).unwrap())
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Scans a table of `2^bits` buckets along `lanes`; returns how often
    /// each bucket was visited.
    fn visits(lanes: &mut Lanes, bits: u32) -> Vec<u32> {
        let mut seen = vec![0u32; 1 << bits];
        while let Some(i) = lanes.next_ready() {
            let cursor = cursor_of(lanes, i);
            lanes.sent(i);
            seen[(cursor & ((1 << bits) - 1)) as usize] += 1;
            let next = next_cursor(cursor, bits);
            let g = lanes.generation();
            let step = lanes.on_reply(i, g, Bytes::from(next.to_string()), next, &mut Vec::new());
            assert_eq!(step, Step::Ok);
        }
        assert!(lanes.is_done());
        seen
    }

    #[test]
    fn lanes_visit_every_bucket_exactly_once() {
        for count in [1, 2, 4, 16] {
            for bits in [4u32, 5, 10, 14] {
                let seen = visits(&mut Lanes::split(count), bits);
                assert!(seen.iter().all(|&n| n == 1), "{count} lanes, {bits} bits");
            }
        }
    }

    #[test]
    fn a_table_smaller_than_the_lanes_gives_duplicates_not_gaps() {
        let seen = visits(&mut Lanes::split(16), 2);
        assert!(seen.iter().all(|&n| n >= 1));
        assert!(seen.iter().any(|&n| n > 1));
    }

    #[test]
    fn a_table_that_grows_mid_scan_is_still_covered() {
        // Half the lanes' first calls on 2^6 buckets, the rest on 2^9.
        let mut lanes = Lanes::split(8);
        let mut seen = vec![0u32; 1 << 9];
        let mut calls = 0;
        while let Some(i) = lanes.next_ready() {
            let cursor = cursor_of(&lanes, i);
            lanes.sent(i);
            let bits = if calls < 20 { 6 } else { 9 };
            calls += 1;
            // A small-table bucket holds every big-table bucket that ends
            // with its bits.
            let small = cursor & ((1 << bits) - 1);
            for b in 0..(1u64 << 9) {
                if b & ((1 << bits) - 1) == small {
                    seen[b as usize] += 1;
                }
            }
            let next = next_cursor(cursor, bits);
            let g = lanes.generation();
            lanes.on_reply(i, g, Bytes::from(next.to_string()), next, &mut Vec::new());
        }
        assert!(seen.iter().all(|&n| n >= 1));
    }

    /// A table of `2^bits` buckets holding `keys`, each in the bucket its
    /// (here: random) hash gives.
    struct Table {
        bits: u32,
        buckets: Vec<Vec<String>>,
    }

    impl Table {
        fn new(bits: u32, keys: usize, seed: u64) -> Table {
            let mut buckets = vec![Vec::new(); 1 << bits];
            let mut x = seed;
            for k in 0..keys {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buckets[(x & ((1 << bits) - 1)) as usize].push(format!("k{k}"));
            }
            Table { bits, buckets }
        }

        /// SCAN as Redis runs it: buckets until COUNT keys or cursor 0.
        fn scan(&self, mut cursor: u64, count: usize) -> (u64, Vec<Bytes>) {
            let mut found = Vec::new();
            loop {
                let bucket = &self.buckets[(cursor & ((1 << self.bits) - 1)) as usize];
                found.extend(bucket.iter().map(|k| Bytes::from(k.clone())));
                cursor = next_cursor(cursor, self.bits);
                if cursor == 0 || found.len() >= count {
                    return (cursor, found);
                }
            }
        }
    }

    /// Scans `table` along `lanes`, `count` keys per call, in the order
    /// `pick` chooses among the ready lanes; returns every key handed on.
    fn scan_all(table: &Table, lanes: &mut Lanes, count: usize, pick: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut in_flight: Vec<(usize, u64)> = Vec::new();
        let mut turn = 0;
        loop {
            // Send up to `pick` SCANs, then answer the oldest.
            while in_flight.len() < pick {
                let Some(i) = lanes.next_ready() else { break };
                in_flight.push((i, cursor_of(lanes, i)));
                lanes.sent(i);
            }
            if in_flight.is_empty() {
                break;
            }
            turn += 1;
            let (i, cursor) = in_flight.remove(turn % in_flight.len());
            let (next, mut keys) = table.scan(cursor, count);
            let g = lanes.generation();
            assert_eq!(
                lanes.on_reply(i, g, Bytes::from(next.to_string()), next, &mut keys),
                Step::Ok
            );
            out.extend(keys);
        }
        assert!(lanes.is_done());
        out
    }

    #[test]
    fn every_key_is_handed_on_exactly_once_whatever_the_order_of_replies() {
        for (bits, keys, lanes, count, pick) in [
            (12, 20_000, 4, 1000, 4),
            (12, 20_000, 16, 1000, 16),
            (10, 5_000, 16, 100, 3),
            (14, 100_000, 16, 10_000, 16),
            (14, 100_000, 8, 10_000, 2),
        ] {
            let table = Table::new(bits, keys, 0x9e37_79b9_7f4a_7c15 ^ keys as u64);
            let out = scan_all(&table, &mut Lanes::split(lanes), count, pick);
            let distinct: std::collections::HashSet<&Bytes> = out.iter().collect();
            assert_eq!(
                distinct.len(),
                keys,
                "every key ({bits} bits, {lanes} lanes)"
            );
            assert_eq!(out.len(), keys, "once each ({bits} bits, {lanes} lanes)");
        }
    }

    #[test]
    fn lane_counts_follow_the_keys() {
        assert_eq!(lanes_for_keys(0), 1);
        assert_eq!(lanes_for_keys(79_999), 1);
        assert_eq!(lanes_for_keys(80_000), 2);
        assert_eq!(lanes_for_keys(200_000), 4);
        assert_eq!(lanes_for_keys(10_000_000), MAX_LANES);
    }

    #[test]
    fn a_cursor_going_backwards_falls_back_to_one_chain() {
        let mut lanes = Lanes::split(4);
        // Lane 1 starts at 2^62 reversed, cursor 2; a reply in lane 0's
        // range (2^61 reversed, cursor 4) is a step back.
        assert_eq!(lanes.cursor(1).unwrap().as_ref(), b"2");
        lanes.sent(1);
        let g = lanes.generation();
        let step = lanes.on_reply(1, g, Bytes::from_static(b"4"), 4, &mut Vec::new());
        assert_eq!(step, Step::NotReversed);
        assert_ne!(lanes.generation(), g);
        assert_eq!(lanes.count(), 1);
        assert_eq!(lanes.cursor(0).unwrap().as_ref(), b"0");
        assert_eq!(lanes.in_flight(), 0);
    }

    #[test]
    fn a_single_chain_passes_its_cursor_through() {
        let mut lanes = Lanes::single("1234");
        assert_eq!(lanes.cursor(0).unwrap().as_ref(), b"1234");
        lanes.sent(0);
        assert_eq!(lanes.in_flight(), 1);
        assert_eq!(lanes.next_ready(), None);
        lanes.lost();
        assert_eq!(lanes.next_ready(), Some(0));
        lanes.sent(0);
        lanes.on_reply(0, 0, Bytes::from_static(b"5"), 5, &mut Vec::new());
        assert_eq!(lanes.cursor(0).unwrap().as_ref(), b"5");
        lanes.sent(0);
        // A reply from before a reset moves nothing.
        lanes.on_reply(0, 7, Bytes::from_static(b"9"), 9, &mut Vec::new());
        assert_eq!(lanes.cursor(0).unwrap().as_ref(), b"5");
        lanes.on_reply(0, 0, Bytes::from_static(b"0"), 0, &mut Vec::new());
        assert!(lanes.is_done());
        lanes.reset();
        assert_eq!(lanes.generation(), 1);
        assert_eq!(lanes.cursor(0).unwrap().as_ref(), b"0");
    }
}
