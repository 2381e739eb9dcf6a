//! Sets of hash slots: what `--slots RANGES` and `--partition I/N` select.
//!
//! A [`SlotSet`] is a 16384-bit bitmap, so membership is one shift and mask
//! on the per-key path, and the set costs 2 KiB whatever it holds. Parsing
//! the two options lives here too, with error messages that name the bad
//! piece; `cli` only wraps them. Which node owns a slot is `topology`'s.

use std::fmt;

use super::slot::SLOTS;

/// Bits per bitmap word.
const WORD_BITS: usize = 64;

/// Bitmap words: one bit per slot.
const WORDS: usize = SLOTS as usize / WORD_BITS;

/// The most partitions `--partition I/N` allows: one slot each. More would
/// leave some partitions empty.
pub const MAX_PARTITIONS: u16 = SLOTS;

/// A set of hash slots.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet {
    bits: [u64; WORDS],
}

impl SlotSet {
    /// No slot.
    pub fn empty() -> SlotSet {
        SlotSet { bits: [0; WORDS] }
    }

    /// Every slot, `0..SLOTS`.
    pub fn full() -> SlotSet {
        SlotSet {
            bits: [u64::MAX; WORDS],
        }
    }

    /// Parses `--slots RANGES`: comma-separated slots (`10923`) and
    /// inclusive ranges (`0-5460`), no spaces. Pieces may overlap or repeat;
    /// an empty list or piece, a reversed range (`10-5`) and a slot outside
    /// `0..16384` are errors naming the piece.
    pub fn parse(ranges: &str) -> Result<SlotSet, String> {
        if ranges.is_empty() {
            return Err("empty slot list: expected slots or ranges like \"0-5460,10923\"".into());
        }
        let mut set = SlotSet::empty();
        for piece in ranges.split(',') {
            let (first, last) = match piece.split_once('-') {
                Some((a, b)) => (slot_number(a, piece)?, slot_number(b, piece)?),
                None => {
                    let s = slot_number(piece, piece)?;
                    (s, s)
                }
            };
            if first > last {
                return Err(format!(
                    "slot range {piece:?} is reversed: {first} is above {last}"
                ));
            }
            set.insert_range(first, last);
        }
        Ok(set)
    }

    /// The `i`-th (0-based) of `n` contiguous slot ranges: slot `s` belongs
    /// to partition `s * n / 16384`, so the ranges differ in size by at most
    /// one slot and `0/n` … `n-1/n` together hold every slot exactly once.
    /// `n` is `1..=MAX_PARTITIONS` and `i` below `n`.
    pub fn partition(i: u16, n: u16) -> Result<SlotSet, String> {
        check_partition(i, n)?;
        let (i, n, slots) = (u32::from(i), u32::from(n), u32::from(SLOTS));
        // The smallest s with s * n / SLOTS >= i is ceil(i * SLOTS / n).
        let start = (i * slots).div_ceil(n);
        let end = ((i + 1) * slots).div_ceil(n) - 1;
        let mut set = SlotSet::empty();
        // Both are below SLOTS: i < n, so end < ceil(n * SLOTS / n) = SLOTS.
        set.insert_range(start as u16, end as u16);
        Ok(set)
    }

    /// Adds `slot`. Panics if `slot >= SLOTS` (a caller bug, not input:
    /// input goes through [`SlotSet::parse`]).
    pub fn insert(&mut self, slot: u16) {
        assert!(slot < SLOTS, "slot {slot} out of range");
        let s = usize::from(slot);
        self.bits[s / WORD_BITS] |= 1 << (s % WORD_BITS);
    }

    /// Adds `first..=last`. Panics if `last >= SLOTS`.
    pub fn insert_range(&mut self, first: u16, last: u16) {
        for s in first..=last {
            self.insert(s);
        }
    }

    /// True if `slot` is in the set; false for any `slot >= SLOTS`.
    pub fn contains(&self, slot: u16) -> bool {
        let s = usize::from(slot);
        s < usize::from(SLOTS) && self.bits[s / WORD_BITS] & (1 << (s % WORD_BITS)) != 0
    }

    /// True if the set holds every slot (no filtering needed).
    pub fn is_full(&self) -> bool {
        self.bits.iter().all(|w| *w == u64::MAX)
    }

    /// True if the set holds no slot.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// How many slots the set holds.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The set as sorted, merged, inclusive ranges: `[(0, 5460), (10923,
    /// 10923)]`.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut ranges = Vec::new();
        // The first slot of the range being built.
        let mut open: Option<usize> = None;
        for (w, &word) in self.bits.iter().enumerate() {
            // Whole words at once: sets are mostly long runs.
            if (word == 0 && open.is_none()) || (word == u64::MAX && open.is_some()) {
                continue;
            }
            for b in 0..WORD_BITS {
                let s = w * WORD_BITS + b;
                match (word & (1 << b) != 0, open) {
                    (true, None) => open = Some(s),
                    (false, Some(first)) => {
                        ranges.push((first as u16, (s - 1) as u16));
                        open = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(first) = open {
            ranges.push((first as u16, SLOTS - 1));
        }
        ranges
    }
}

/// One slot number of a `--slots` piece: digits only (no sign, no spaces),
/// below `SLOTS`.
fn slot_number(text: &str, piece: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "slot range {piece:?} is not a slot (0-16383) or a range of slots (first-last)"
        ));
    }
    match text.parse::<u16>() {
        Ok(s) if s < SLOTS => Ok(s),
        _ => Err(format!(
            "slot {text:?} in {piece:?} is out of range: slots are 0-{}",
            SLOTS - 1
        )),
    }
}

/// Parses `--partition I/N` into `(i, n)`: both decimal, `n` from 1 to
/// [`MAX_PARTITIONS`], `i` from 0 to `n - 1`.
pub fn parse_partition(text: &str) -> Result<(u16, u16), String> {
    let bad =
        || format!("partition {text:?} is not I/N (the 0-based index I of N partitions, like 0/4)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let number = |t: &str| -> Result<u32, String> {
        if t.is_empty() || t.len() > 9 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let (i, n) = (number(i)?, number(n)?);
    if n == 0 || n > u32::from(MAX_PARTITIONS) {
        return Err(format!(
            "partition {text:?}: the count {n} is out of range 1-{MAX_PARTITIONS}"
        ));
    }
    if i >= n {
        return Err(format!(
            "partition {text:?}: the index {i} must be below the count {n} (indexes start at 0)"
        ));
    }
    // Both fit: n <= MAX_PARTITIONS = 16384 and i < n.
    Ok((i as u16, n as u16))
}

fn check_partition(i: u16, n: u16) -> Result<(), String> {
    if n == 0 || n > MAX_PARTITIONS {
        return Err(format!(
            "partition {i}/{n}: the count {n} is out of range 1-{MAX_PARTITIONS}"
        ));
    }
    if i >= n {
        return Err(format!(
            "partition {i}/{n}: the index {i} must be below the count {n} (indexes start at 0)"
        ));
    }
    Ok(())
}

/// Ranges as `--slots` takes them (`0-5460,10923`), so the output parses
/// back to the same set; the empty set is the empty string.
impl fmt::Display for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (first, last)) in self.ranges().into_iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            if first == last {
                write!(f, "{first}")?;
            } else {
                write!(f, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

/// The ranges, not 256 words of bits.
impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slots_and_ranges() {
        let set = SlotSet::parse("0-5460,10923").unwrap();
        assert_eq!(set.ranges(), vec![(0, 5460), (10923, 10923)]);
        assert_eq!(set.len(), 5462);
        assert!(set.contains(0) && set.contains(5460) && set.contains(10923));
        assert!(!set.contains(5461) && !set.contains(10922) && !set.contains(10924));
        assert_eq!(
            SlotSet::parse("5461-10922").unwrap().ranges(),
            vec![(5461, 10922)]
        );
        assert_eq!(SlotSet::parse("7").unwrap().ranges(), vec![(7, 7)]);
        assert_eq!(SlotSet::parse("3-3").unwrap().ranges(), vec![(3, 3)]);
    }

    #[test]
    fn overlaps_and_duplicates_merge() {
        let set = SlotSet::parse("5,1-10,10,8-12,13,0").unwrap();
        assert_eq!(set.ranges(), vec![(0, 13)]);
        assert_eq!(set.to_string(), "0-13");
    }

    #[test]
    fn the_whole_range_is_full() {
        let set = SlotSet::parse("0-16383").unwrap();
        assert!(set.is_full());
        assert_eq!(set, SlotSet::full());
        assert_eq!(set.len(), 16384);
        assert!(!SlotSet::parse("0-16382").unwrap().is_full());
        assert!(!SlotSet::parse("1-16383").unwrap().is_full());
        assert!(SlotSet::empty().is_empty() && !SlotSet::full().is_empty());
    }

    /// The limit: slot 16383 is the last, 16384 is out of range.
    #[test]
    fn slot_limit_boundary() {
        assert!(SlotSet::parse("16383").unwrap().contains(16383));
        assert!(SlotSet::parse("16000-16383").is_ok());
        for bad in ["16384", "0-16384", "16384-16384", "99999", "4294967296"] {
            let e = SlotSet::parse(bad).unwrap_err();
            assert!(e.contains("out of range"), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert!(!SlotSet::full().contains(16384));
        assert!(!SlotSet::full().contains(u16::MAX));
    }

    #[test]
    fn rejects_bad_lists_naming_the_piece() {
        let e = SlotSet::parse("").unwrap_err();
        assert!(e.contains("empty slot list"), "{e}");
        let e = SlotSet::parse("10-5").unwrap_err();
        assert!(e.contains("\"10-5\" is reversed"), "{e}");
        for (input, piece) in [
            ("1,,2", ""),
            ("1,", ""),
            (",1", ""),
            ("a", "a"),
            ("1-", "1-"),
            ("-1", "-1"),
            ("1-2-3", "1-2-3"),
            (" 1", " 1"),
            ("1 ", "1 "),
            ("0- 5", "0- 5"),
            ("+5", "+5"),
            ("0x10", "0x10"),
            ("1..5", "1..5"),
        ] {
            let e = SlotSet::parse(input).unwrap_err();
            assert!(e.contains(&format!("{piece:?}")), "{input:?}: {e}");
        }
    }

    #[test]
    fn display_parses_back() {
        let inputs = [
            "0",
            "16383",
            "0-16383",
            "0-5460,10923",
            "1,3,5,7-9,100-200,16383",
            "63-64,127-128",
            "0-62,64,66-16383",
        ];
        for input in inputs {
            let set = SlotSet::parse(input).unwrap();
            assert_eq!(set.to_string(), input);
            assert_eq!(SlotSet::parse(&set.to_string()).unwrap(), set);
        }
        // Pseudo-random sets round-trip too.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200 {
            let mut set = SlotSet::empty();
            for _ in 0..(x % 50) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                set.insert((x % u64::from(SLOTS)) as u16);
            }
            if set.is_empty() {
                assert_eq!(set.to_string(), "");
                continue;
            }
            let text = set.to_string();
            assert_eq!(SlotSet::parse(&text).unwrap(), set, "{text}");
            assert_eq!(
                set.ranges()
                    .iter()
                    .map(|(a, b)| usize::from(b - a + 1))
                    .sum::<usize>(),
                set.len()
            );
        }
        assert_eq!(
            format!("{:?}", SlotSet::parse("1-3").unwrap()),
            "SlotSet(1-3)"
        );
    }

    /// Every N's partitions are disjoint, cover every slot, follow the
    /// `s * n / 16384` rule and differ in size by at most one.
    #[test]
    fn partitions_cover_every_slot_once() {
        for n in (1..=64).chain([100, 1000, 16383, MAX_PARTITIONS]) {
            let mut owner = vec![None; usize::from(SLOTS)];
            let mut sizes = Vec::new();
            for i in 0..n {
                let set = SlotSet::partition(i, n).unwrap();
                let ranges = set.ranges();
                assert_eq!(ranges.len(), 1, "{i}/{n} is one contiguous range");
                sizes.push(set.len());
                for s in ranges[0].0..=ranges[0].1 {
                    assert_eq!(owner[usize::from(s)], None, "slot {s} twice for n={n}");
                    owner[usize::from(s)] = Some(i);
                    let expected = u32::from(s) * u32::from(n) / u32::from(SLOTS);
                    assert_eq!(u32::from(i), expected, "slot {s} for n={n}");
                }
            }
            assert!(owner.iter().all(Option::is_some), "n={n} misses a slot");
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "n={n}: sizes {min}..{max}");
        }
    }

    #[test]
    fn partition_examples() {
        assert!(SlotSet::partition(0, 1).unwrap().is_full());
        assert_eq!(SlotSet::partition(0, 2).unwrap().to_string(), "0-8191");
        assert_eq!(SlotSet::partition(1, 2).unwrap().to_string(), "8192-16383");
        assert_eq!(SlotSet::partition(0, 3).unwrap().to_string(), "0-5461");
        assert_eq!(SlotSet::partition(1, 3).unwrap().to_string(), "5462-10922");
        assert_eq!(SlotSet::partition(2, 3).unwrap().to_string(), "10923-16383");
        assert_eq!(
            SlotSet::partition(16383, 16384).unwrap().to_string(),
            "16383"
        );
    }

    /// The limit: 16384 partitions is the most, 16385 is refused.
    #[test]
    fn partition_limit_boundary() {
        assert_eq!(parse_partition("16383/16384").unwrap(), (16383, 16384));
        assert!(SlotSet::partition(0, MAX_PARTITIONS).is_ok());
        let e = parse_partition("0/16385").unwrap_err();
        assert!(
            e.contains("\"0/16385\"") && e.contains("out of range"),
            "{e}"
        );
        assert!(SlotSet::partition(0, MAX_PARTITIONS + 1).is_err());
    }

    #[test]
    fn parses_partitions() {
        assert_eq!(parse_partition("0/1").unwrap(), (0, 1));
        assert_eq!(parse_partition("3/4").unwrap(), (3, 4));
        assert_eq!(parse_partition("007/010").unwrap(), (7, 10));
        for (input, phrase) in [
            ("4/4", "must be below the count 4"),
            ("5/4", "must be below the count 4"),
            ("0/0", "out of range"),
            ("1", "is not I/N"),
            ("", "is not I/N"),
            ("a/4", "is not I/N"),
            ("1/b", "is not I/N"),
            ("/4", "is not I/N"),
            ("1/", "is not I/N"),
            ("-1/4", "is not I/N"),
            ("+1/4", "is not I/N"),
            (" 1/4", "is not I/N"),
            ("1/2/3", "is not I/N"),
            ("0/99999999999999999999", "is not I/N"),
        ] {
            let e = parse_partition(input).unwrap_err();
            assert!(e.contains(phrase), "{input:?}: {e}");
            assert!(e.contains(&format!("{input:?}")), "{input:?}: {e}");
        }
        assert!(SlotSet::partition(4, 4).is_err());
        assert!(SlotSet::partition(0, 0).is_err());
    }
}
