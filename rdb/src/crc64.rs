//! CRC-64/Jones as Redis and Valkey compute it over a DUMP payload.
//!
//! Parameters (the "CRC-64/REDIS" entry of the CRC catalogue): polynomial
//! `0xad93d23594c935a9`, reflected input and output, initial value 0, no
//! final XOR; check value `crc64(b"123456789") == 0xe9c6d914c4b8d9ca`.
//!
//! Reflected means bits are processed least significant first, so the
//! register shifts right and the table uses the bit-reversed polynomial.
//! Eight tables (slicing-by-8) let the loop fold 8 input bytes per step;
//! they are built at compile time. A payload is hashed once per decode and
//! once per footer rewrite, so this is on the transcoding hot path.

/// The Jones polynomial, normal (MSB-first) form.
const POLY: u64 = 0xad93_d235_94c9_35a9;
/// The same, bit-reversed, for the right-shifting (reflected) register.
const POLY_REFLECTED: u64 = POLY.reverse_bits();

/// `TABLES[0][b]`: the register after feeding byte `b` into a zero register;
/// `TABLES[k][b]`: the same followed by `k` zero bytes.
const TABLES: [[u64; 256]; 8] = build_tables();

const fn build_tables() -> [[u64; 256]; 8] {
    let mut tables = [[0u64; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let prev = tables[k - 1][b];
            tables[k][b] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            b += 1;
        }
        k += 1;
    }
    tables
}

/// Continues a CRC-64/Jones over `data` from register `crc` (0 to start).
pub fn update(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = crc ^ u64::from_le_bytes(word);
        crc = TABLES[7][(x & 0xff) as usize]
            ^ TABLES[6][((x >> 8) & 0xff) as usize]
            ^ TABLES[5][((x >> 16) & 0xff) as usize]
            ^ TABLES[4][((x >> 24) & 0xff) as usize]
            ^ TABLES[3][((x >> 32) & 0xff) as usize]
            ^ TABLES[2][((x >> 40) & 0xff) as usize]
            ^ TABLES[1][((x >> 48) & 0xff) as usize]
            ^ TABLES[0][(x >> 56) as usize];
    }
    for &byte in chunks.remainder() {
        crc = TABLES[0][((crc ^ u64::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The CRC-64/Jones of `data`, as in a DUMP payload's footer.
pub fn crc64(data: &[u8]) -> u64 {
    update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit at a time, straight from the definition: the reference the
    /// table-driven version is checked against.
    fn bitwise(data: &[u8]) -> u64 {
        let mut crc = 0u64;
        for &byte in data {
            crc ^= u64::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value_of_the_catalogue() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(bitwise(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn empty_input_is_zero() {
        assert_eq!(crc64(b""), 0);
    }

    /// Redis' own test vector (src/crc64.c): its "Lorem ipsum" text, hashed
    /// with `sizeof`, so with the C string's terminating NUL.
    #[test]
    fn redis_test_vector() {
        let li = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed \
do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad \
minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea \
commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit \
esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat \
non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.\0";
        assert_eq!(crc64(li), 0xc7794709e69683b3);
    }

    #[test]
    fn slicing_matches_bitwise_at_every_length_and_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc64(&data[..len]), bitwise(&data[..len]), "len {len}");
        }
        let whole = crc64(&data);
        for split in 0..data.len() {
            assert_eq!(update(update(0, &data[..split]), &data[split..]), whole);
        }
    }

    #[test]
    fn matches_a_payload_redis_wrote() {
        // DUMP of the string "hello world" from Redis 7.0.
        let payload = include_bytes!("../tests/fixtures/redis-7.0/str_raw.dump");
        let (body, crc) = payload.split_at(payload.len() - 8);
        let mut stored = [0u8; 8];
        stored.copy_from_slice(crc);
        assert_eq!(crc64(body), u64::from_le_bytes(stored));
    }
}
