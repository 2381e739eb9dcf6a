//! LZF, the compression of RDB strings (`RDB_ENC_LZF`) and of compressed
//! quicklist nodes.
//!
//! The format is a sequence of runs, each starting with a control byte:
//!
//! - `000LLLLL`: a literal run of `L + 1` bytes that follow;
//! - `LLLOOOOO oooooooo`: a back reference of `L + 2` bytes (`L` in 1..=6)
//!   starting `(O << 8) + o + 1` bytes back in the output;
//! - `111OOOOO llllllll oooooooo`: the same with `L = 7 + l`, up to 264
//!   bytes. References may overlap their own output (run-length style).
//!
//! Decompression here is checked at every step: no read past the input,
//! no reference before the output's start, and never more output than the
//! length the RDB string declared, which the caller has bounded first.

/// Largest output per input byte: a 3-byte long reference yields 264 bytes.
pub(crate) const MAX_RATIO: usize = 88;

/// Decompresses `input` into exactly `out_len` bytes, or `None` if the input
/// is malformed or does not produce exactly `out_len` bytes.
pub(crate) fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if out_len > input.len().saturating_mul(MAX_RATIO) {
        return None;
    }
    let mut out = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let literal = input.get(ip..ip + run)?;
            if out.len() + run > out_len {
                return None;
            }
            out.extend_from_slice(literal);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip)?);
                ip += 1;
            }
            let low = usize::from(*input.get(ip)?);
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            let start = out.len().checked_sub(back)?;
            if out.len() + len > out_len {
                return None;
            }
            // The reference may overlap what it writes (a run repeating the
            // last `back` bytes): copy it in pieces that are already there.
            let mut from = start;
            let mut left = len;
            while left > 0 {
                let piece = left.min(out.len() - from);
                out.extend_from_within(from..from + piece);
                from += piece;
                left -= piece;
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_run() {
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 3), Some(b"abc".to_vec()));
    }

    #[test]
    fn short_and_long_back_references_overlapping() {
        // "a", then a 3-byte reference 1 back: "aaaa".
        assert_eq!(decompress(&[0, b'a', 0x20, 0], 4), Some(b"aaaa".to_vec()));
        // "ab", then a long reference of 7+3+2 = 12 bytes 2 back.
        let out = decompress(&[1, b'a', b'b', 0xe0, 3, 1], 14).expect("valid");
        assert_eq!(out, b"ababababababab".to_vec());
    }

    #[test]
    fn malformed_input_is_refused() {
        // Reference before the start of the output.
        assert_eq!(decompress(&[0x20, 0], 3), None);
        // Literal run longer than the input.
        assert_eq!(decompress(&[5, b'a'], 6), None);
        // Reference cut short.
        assert_eq!(decompress(&[0, b'a', 0xe0], 10), None);
        assert_eq!(decompress(&[0, b'a', 0xe0, 1], 10), None);
        // More output than declared, and less.
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 2), None);
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 4), None);
        // A declared length no input of this size can reach.
        assert_eq!(decompress(&[0, b'a'], 1000), None);
    }

    #[test]
    fn largest_expansion_is_within_the_ratio() {
        // "a" then long references of 264 bytes each, 1 back.
        let mut input = vec![0, b'a'];
        for _ in 0..100 {
            input.extend_from_slice(&[0xe0, 255, 0]);
        }
        let out_len = 1 + 100 * 264;
        assert!(out_len <= input.len() * MAX_RATIO);
        assert_eq!(decompress(&input, out_len), Some(vec![b'a'; out_len]));
    }
}
