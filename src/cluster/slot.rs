//! Key → hash slot, exactly as a Redis Cluster node computes it.
//!
//! A key belongs to slot `CRC16(tag) mod 16384`, where `tag` is the key's
//! hash tag (the part between the first `{` and the next `}`, when that is
//! not empty) or else the whole key. rump must agree with the servers bit for
//! bit: a key sent to the wrong master is refused with `MOVED` (a target) or
//! silently skipped by a slot filter (a source), so the integration tests
//! check this against a live server's `CLUSTER KEYSLOT`.
//!
//! Only the arithmetic lives here; which node owns a slot is `topology`'s.

/// How many hash slots a Redis Cluster has: slots are `0..SLOTS`.
pub const SLOTS: u16 = 16384;

/// The CRC16 variant of the Redis Cluster specification: CCITT polynomial
/// 0x1021, initial value 0, no reflection, no final xor (a.k.a. XMODEM).
const POLY: u16 = 0x1021;

/// One table entry per byte value, computed at compile time: a byte at a
/// time instead of a bit at a time, and nothing to initialise at run time.
const TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// CRC16-CCITT (XMODEM) of `data`, the checksum Redis Cluster hashes keys
/// with: `crc16(b"123456789") == 0x31C3`.
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// The part of `key` that is hashed: the bytes between the first `{` and the
/// first `}` after it, if there are any; otherwise the whole key (also when
/// there is no `{`, no `}` after it, or nothing between them: `a{}{b}`
/// hashes whole, since only the first `{` counts).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = memchr::memchr(b'{', key) else {
        return key;
    };
    let rest = &key[open + 1..];
    match memchr::memchr(b'}', rest) {
        Some(close) if close > 0 => &rest[..close],
        _ => key,
    }
}

/// The hash slot of `key`, in `0..SLOTS`.
pub fn slot(key: &[u8]) -> u16 {
    // SLOTS is a power of two: mod is a mask.
    crc16(hash_tag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_spec_vector() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    /// The table is the bitwise algorithm, byte by byte.
    #[test]
    fn table_matches_the_bitwise_crc() {
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc = 0u16;
            for &b in data {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ POLY
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(crc16(&all), bitwise(&all));
        for b in 0..=255u8 {
            assert_eq!(crc16(&[b]), bitwise(&[b]), "byte {b}");
        }
    }

    #[test]
    fn hash_tags_follow_the_redis_rule() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"{}", b"{}"),
            (b"{a}b", b"a"),
            (b"a{}{b}", b"a{}{b}"),
            (b"a{b}{c}", b"b"),
            (b"{", b"{"),
            (b"}", b"}"),
            (b"a{b", b"a{b"),
            (b"a}b{", b"a}b{"),
            (b"}{a}", b"a"),
            (b"foo{bar}zap", b"bar"),
            (b"{{a}}", b"{a"),
            (b"plain", b"plain"),
            (b"", b""),
        ];
        for (key, tag) in cases {
            assert_eq!(
                hash_tag(key),
                *tag,
                "hash_tag({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn tagged_keys_share_the_tag_slot() {
        assert_eq!(slot(b"foo{bar}zap"), slot(b"bar"));
        assert_eq!(slot(b"{user:1}:name"), slot(b"{user:1}:mail"));
        assert_ne!(
            slot(b"a{}{b}"),
            slot(b"b"),
            "an empty first tag hashes the whole key"
        );
    }

    /// Values from a real Redis 7.0 `CLUSTER KEYSLOT` (the integration tests
    /// check many more against a live server).
    #[test]
    fn known_slots() {
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"hello"), 866);
        assert_eq!(slot(b""), 0);
    }

    /// `SLOTS` is the limit: every slot is below it.
    #[test]
    fn slots_stay_below_the_limit() {
        assert_eq!(SLOTS, 16384);
        assert!(SLOTS.is_power_of_two());
        for i in 0..100_000u32 {
            assert!(slot(&i.to_le_bytes()) < SLOTS);
        }
    }
}
