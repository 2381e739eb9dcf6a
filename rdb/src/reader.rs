//! The RDB primitives a payload is made of: lengths, strings (raw, integer,
//! LZF), doubles, millisecond times and raw stream IDs.
//!
//! A [`Reader`] walks one buffer: the payload between its type byte and its
//! footer, or a blob (listpack, ziplist, ...) taken out of it. Strings come
//! back as [`Bytes`] slices of that buffer, so nothing is copied; integers
//! are formatted into blocks shared by many elements ([`Ints`]); everything
//! that allocates is charged to the decode's [`Budget`] first.

use bytes::{Bytes, BytesMut};

use crate::limits::{Budget, Limits};
use crate::{lzf, Error};

/// `rdbLoadLen`'s first-byte classes (top two bits).
const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const ENCVAL: u8 = 3;
/// `RDB_ENC_*`: the special string encodings after an `11xxxxxx` byte.
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// What a decode carries along: its limits, its budget and its integer
/// formatting blocks.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) limits: Limits,
    pub(crate) budget: Budget,
    pub(crate) ints: Ints,
}

impl Ctx {
    pub(crate) fn new(limits: Limits) -> Ctx {
        Ctx {
            limits,
            budget: Budget::new(limits.max_alloc),
            ints: Ints::default(),
        }
    }

    /// Pushes onto `vec`, charging the budget when the vector must grow
    /// (by doubling), so what it holds is paid for before it is allocated.
    pub(crate) fn push<T>(&mut self, vec: &mut Vec<T>, item: T) -> Result<(), Error> {
        if vec.len() == vec.capacity() {
            let grow = vec.capacity().max(4);
            self.budget.charge_items(grow, size_of::<T>())?;
            vec.reserve_exact(grow);
        }
        vec.push(item);
        Ok(())
    }

    /// Makes room in `vec` for `additional` more elements that each take
    /// at least `min_size` of the `remaining` input bytes, charged.
    pub(crate) fn reserve<T>(
        &mut self,
        vec: &mut Vec<T>,
        additional: usize,
        remaining: usize,
        min_size: usize,
    ) -> Result<(), Error> {
        let additional = additional.min(remaining / min_size.max(1));
        let spare = vec.capacity() - vec.len();
        if additional > spare {
            let grow = additional.max(vec.capacity());
            self.budget.charge_items(grow, size_of::<T>())?;
            vec.reserve_exact(grow);
        }
        Ok(())
    }

    /// A vector for `count` elements that each take at least `min_size`
    /// bytes of the `remaining` input: preallocated only as far as the input
    /// could fill it, and charged.
    pub(crate) fn vec_for<T>(
        &mut self,
        count: u64,
        remaining: usize,
        min_size: usize,
    ) -> Result<Vec<T>, Error> {
        let plausible = remaining / min_size.max(1);
        let cap = usize::try_from(count).unwrap_or(usize::MAX).min(plausible);
        self.budget.charge_items(cap, size_of::<T>())?;
        Ok(Vec::with_capacity(cap))
    }

    /// The decimal form of `v`, as Redis returns an integer-encoded element.
    pub(crate) fn int(&mut self, v: i64) -> Result<Bytes, Error> {
        self.ints.format(v, &mut self.budget)
    }
}

/// Blocks the decimal forms of integer elements are written into; each
/// element is a [`Bytes`] slice of a block, so an intset of 10,000 members
/// costs a few allocations, not 10,000.
#[derive(Debug, Default)]
pub(crate) struct Ints {
    block: BytesMut,
}

impl Ints {
    const BLOCK: usize = 4096;

    fn format(&mut self, v: i64, budget: &mut Budget) -> Result<Bytes, Error> {
        let mut digits = [0u8; 20];
        let text = format_i64(v, &mut digits);
        if self.block.capacity() - self.block.len() < text.len() {
            budget.charge(Self::BLOCK)?;
            self.block = BytesMut::with_capacity(Self::BLOCK);
        }
        self.block.extend_from_slice(text);
        Ok(self.block.split().freeze())
    }
}

/// Writes `v` in decimal into `buf` and returns the digits.
pub(crate) fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Parses `s` as an integer only if `s` is exactly how that integer prints
/// (no sign on zero, no `+`, no leading zeros, no spaces): the strictness
/// of Redis' `string2ll`, so an integer-encoded element reads back as the
/// very bytes that were written.
pub(crate) fn canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let v: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    let mut buf = [0u8; 20];
    (format_i64(v, &mut buf) == s).then_some(v)
}

/// A cursor over one buffer of a payload.
pub(crate) struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
    /// Offset of `data[0]` in the payload, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// Reads `data[start..end]`; `base` is where `data` starts in the payload.
    pub(crate) fn new(data: &'a Bytes, start: usize, end: usize, base: usize) -> Reader<'a> {
        Reader {
            data,
            pos: start,
            end,
            base,
        }
    }

    /// The offset in the payload of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// A position to take a slice from later ([`Reader::since`]).
    pub(crate) fn mark(&self) -> usize {
        self.pos
    }

    /// The bytes read since `mark`, shared with the buffer.
    pub(crate) fn since(&self, mark: usize) -> Bytes {
        self.data.slice(mark..self.pos)
    }

    fn truncated(&self, what: &'static str) -> Error {
        Error::Truncated {
            offset: self.offset(),
            what,
        }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(self.truncated(what));
        }
        let data: &'a Bytes = self.data;
        let slice = &data[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }

    /// An RDB length, or the special-encoding tag after `11xxxxxx`
    /// (returned as `Err(tag)` in the inner result).
    fn len_or_tag(&mut self, what: &'static str) -> Result<Result<u64, u8>, Error> {
        let at = self.offset();
        let first = self.u8(what)?;
        Ok(match first >> 6 {
            ENCVAL => Err(first & 0x3f),
            LEN_6BIT => Ok(u64::from(first & 0x3f)),
            LEN_14BIT => Ok((u64::from(first & 0x3f) << 8) | u64::from(self.u8(what)?)),
            _ => match first {
                LEN_32BIT => Ok(u64::from(u32::from_be_bytes(self.array(what)?))),
                LEN_64BIT => Ok(u64::from_be_bytes(self.array(what)?)),
                _ => {
                    return Err(Error::Corrupt {
                        offset: at,
                        what: "length encoding",
                    })
                }
            },
        })
    }

    /// An RDB length (`rdbLoadLen`), never a special encoding.
    pub(crate) fn len(&mut self, what: &'static str) -> Result<u64, Error> {
        let at = self.offset();
        self.len_or_tag(what)?.map_err(|_| Error::Corrupt {
            offset: at,
            what: "length (a string encoding where a length belongs)",
        })
    }

    /// An RDB length used as a count of items that each take at least
    /// `min_size` bytes of what is left: a count the input cannot hold is
    /// refused before anything is sized by it.
    pub(crate) fn count(&mut self, what: &'static str, min_size: usize) -> Result<u64, Error> {
        let at = self.offset();
        let count = self.len(what)?;
        let room = (self.remaining() / min_size.max(1)) as u64;
        if count > room {
            return Err(Error::Corrupt {
                offset: at,
                what: "count (more items than the bytes left can hold)",
            });
        }
        Ok(count)
    }

    /// An RDB string (`rdbGenericLoadStringObject`): raw, integer or LZF.
    pub(crate) fn string(&mut self, ctx: &mut Ctx, what: &'static str) -> Result<Bytes, Error> {
        let at = self.offset();
        match self.len_or_tag(what)? {
            Ok(len) => {
                let len = Self::check_len(len, ctx, what)?;
                let start = self.pos;
                self.take(len, what)?;
                Ok(self.data.slice(start..start + len))
            }
            Err(ENC_INT8) => {
                let v = i8::from_le_bytes(self.array(what)?);
                ctx.int(i64::from(v))
            }
            Err(ENC_INT16) => {
                let v = i16::from_le_bytes(self.array(what)?);
                ctx.int(i64::from(v))
            }
            Err(ENC_INT32) => {
                let v = i32::from_le_bytes(self.array(what)?);
                ctx.int(i64::from(v))
            }
            Err(ENC_LZF) => {
                let clen = self.len(what)?;
                let len = self.len(what)?;
                let clen = Self::check_len(clen, ctx, what)?;
                let len = Self::check_len(len, ctx, what)?;
                let compressed = self.take(clen, what)?;
                if len > clen.saturating_mul(lzf::MAX_RATIO) {
                    return Err(Error::Corrupt {
                        offset: at,
                        what: "LZF string (declared length beyond what LZF can expand to)",
                    });
                }
                ctx.budget.charge(len)?;
                let out = lzf::decompress(compressed, len).ok_or(Error::Corrupt {
                    offset: at,
                    what: "LZF string",
                })?;
                Ok(Bytes::from(out))
            }
            Err(_) => Err(Error::Corrupt {
                offset: at,
                what: "string encoding",
            }),
        }
    }

    /// A string length within [`Limits::max_string_len`].
    fn check_len(len: u64, ctx: &Ctx, what: &'static str) -> Result<usize, Error> {
        let limit = ctx.limits.max_string_len;
        match usize::try_from(len) {
            Ok(n) if n <= limit => Ok(n),
            _ => Err(Error::TooLarge {
                what,
                len,
                limit: limit as u64,
            }),
        }
    }

    /// A binary double (`RDB_TYPE_ZSET_2` scores): IEEE 754, little-endian.
    pub(crate) fn binary_f64(&mut self) -> Result<f64, Error> {
        Ok(f64::from_le_bytes(self.array("score")?))
    }

    /// A text double (`RDB_TYPE_ZSET` scores): a length byte, then ASCII;
    /// lengths 253, 254 and 255 stand for NaN, +inf and -inf.
    pub(crate) fn text_f64(&mut self) -> Result<f64, Error> {
        let at = self.offset();
        let len = self.u8("score")?;
        match len {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(usize::from(n), "score")?;
                parse_score(text).ok_or(Error::Corrupt {
                    offset: at,
                    what: "score",
                })
            }
        }
    }

    /// A millisecond time (`rdbLoadMillisecondTime`): 8 bytes, little-endian.
    pub(crate) fn ms(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A stream ID in raw form (PEL entries): two big-endian u64s.
    pub(crate) fn raw_id(&mut self) -> Result<crate::StreamId, Error> {
        let raw: [u8; 16] = self.array("stream ID")?;
        Ok(id_from_raw(&raw))
    }
}

/// A stream ID from its 16-byte radix-tree form: `ms` then `seq`, both
/// big-endian, so IDs sort as byte strings.
pub(crate) fn id_from_raw(raw: &[u8; 16]) -> crate::StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&raw[..8]);
    seq.copy_from_slice(&raw[8..]);
    crate::StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
}

/// A score as text, as `strtod` reads it in Redis (`inf`, `-inf` and
/// decimal or exponent forms). NaN is refused: no server stores one.
pub(crate) fn parse_score(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    let v: f64 = match s {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_over(bytes: &Bytes) -> Reader<'_> {
        Reader::new(bytes, 0, bytes.len(), 0)
    }

    fn ctx() -> Ctx {
        Ctx::new(Limits::for_payload(0))
    }

    #[test]
    fn lengths_in_every_width() {
        let data = Bytes::from_static(&[
            0x3f, // 63
            0x40, 0x40, // 14-bit 64
            0x80, 0, 1, 0, 0, // 32-bit 65536
            0x81, 0, 0, 0, 1, 0, 0, 0, 0, // 64-bit 2^32
        ]);
        let mut r = reader_over(&data);
        assert_eq!(r.len("len"), Ok(63));
        assert_eq!(r.len("len"), Ok(64));
        assert_eq!(r.len("len"), Ok(65536));
        assert_eq!(r.len("len"), Ok(1 << 32));
        assert!(r.is_empty());
    }

    #[test]
    fn bad_length_bytes_are_refused() {
        let data = Bytes::from_static(&[0x82]);
        assert!(matches!(
            reader_over(&data).len("len"),
            Err(Error::Corrupt { offset: 0, .. })
        ));
        let data = Bytes::from_static(&[0xc0, 1]);
        assert!(matches!(
            reader_over(&data).len("len"),
            Err(Error::Corrupt { .. })
        ));
        let data = Bytes::from_static(&[0x80, 0, 0]);
        assert!(matches!(
            reader_over(&data).len("len"),
            Err(Error::Truncated { offset: 1, .. })
        ));
    }

    #[test]
    fn strings_raw_integer_and_lzf() {
        let mut c = ctx();
        let data = Bytes::from_static(&[
            0x03, b'a', b'b', b'c', // raw
            0xc0, 0xf9, // int8 -7
            0xc1, 0x39, 0x30, // int16 12345
            0xc2, 0x00, 0x6c, 0xca, 0x88, // int32 -2000000000
            0xc3, 0x04, 0x06, 0x00, b'a', 0x60, 0x00, // LZF "aaaaaa"? see below
        ]);
        let mut r = reader_over(&data);
        assert_eq!(r.string(&mut c, "s").as_deref(), Ok(&b"abc"[..]));
        assert_eq!(r.string(&mut c, "s").as_deref(), Ok(&b"-7"[..]));
        assert_eq!(r.string(&mut c, "s").as_deref(), Ok(&b"12345"[..]));
        assert_eq!(r.string(&mut c, "s").as_deref(), Ok(&b"-2000000000"[..]));
        // "a" literal, then a 3+2 = 5-byte reference 1 back: "aaaaaa".
        assert_eq!(r.string(&mut c, "s").as_deref(), Ok(&b"aaaaaa"[..]));
        assert!(r.is_empty());
    }

    #[test]
    fn raw_strings_are_slices_of_the_buffer() {
        let data = Bytes::from(vec![5, b'h', b'e', b'l', b'l', b'o']);
        let s = reader_over(&data).string(&mut ctx(), "s").expect("string");
        assert_eq!(s.as_ptr(), data[1..].as_ptr());
    }

    #[test]
    fn string_limits_apply_to_raw_and_decompressed_lengths() {
        let mut c = Ctx::new(Limits {
            max_string_len: 3,
            max_alloc: 1 << 20,
        });
        let data = Bytes::from_static(&[3, b'a', b'b', b'c']);
        assert!(reader_over(&data).string(&mut c, "s").is_ok());
        let data = Bytes::from_static(&[4, b'a', b'b', b'c', b'd']);
        assert_eq!(
            reader_over(&data).string(&mut c, "s"),
            Err(Error::TooLarge {
                what: "s",
                len: 4,
                limit: 3
            })
        );
        let data = Bytes::from_static(&[0xc3, 0x02, 0x04, 0x00, b'a', 0x20, 0x00]);
        assert!(matches!(
            reader_over(&data).string(&mut c, "s"),
            Err(Error::TooLarge { len: 4, .. })
        ));
    }

    #[test]
    fn lzf_claiming_more_than_lzf_can_expand_is_refused_before_allocating() {
        // 2 compressed bytes claiming 1 GiB: refused with a tiny budget, so
        // no allocation of the claimed size was attempted.
        let mut c = Ctx::new(Limits {
            max_string_len: usize::MAX,
            max_alloc: 1024,
        });
        let data = Bytes::from_static(&[0xc3, 0x02, 0x80, 0x40, 0, 0, 0, 0, b'a']);
        assert!(matches!(
            reader_over(&data).string(&mut c, "s"),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn counts_beyond_the_input_are_refused() {
        let data = Bytes::from_static(&[3, 1, 1, 1]);
        assert_eq!(reader_over(&data).count("n", 1), Ok(3));
        let data = Bytes::from_static(&[4, 1, 1, 1]);
        assert!(reader_over(&data).count("n", 1).is_err());
        let data = Bytes::from_static(&[2, 1, 1, 1]);
        assert!(reader_over(&data).count("n", 2).is_err());
    }

    #[test]
    fn text_scores() {
        let data = Bytes::from_static(&[3, b'1', b'.', b'5', 254, 255, 4, b'-', b'1', b'e', b'3']);
        let mut r = reader_over(&data);
        assert_eq!(r.text_f64(), Ok(1.5));
        assert_eq!(r.text_f64(), Ok(f64::INFINITY));
        assert_eq!(r.text_f64(), Ok(f64::NEG_INFINITY));
        assert_eq!(r.text_f64(), Ok(-1000.0));
        let data = Bytes::from_static(&[253]);
        assert!(reader_over(&data).text_f64().expect("nan").is_nan());
        let data = Bytes::from_static(&[2, b'x', b'y']);
        assert!(reader_over(&data).text_f64().is_err());
    }

    #[test]
    fn canonical_integers_only() {
        for ok in [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "10",
        ] {
            assert!(canonical_i64(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in [
            "",
            "-0",
            "+1",
            "01",
            " 1",
            "1 ",
            "9223372036854775808",
            "1.0",
            "-",
        ] {
            assert_eq!(canonical_i64(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn integers_share_blocks() {
        let mut c = ctx();
        let a = c.int(i64::MIN).expect("int");
        let b = c.int(42).expect("int");
        assert_eq!(&a[..], b"-9223372036854775808");
        assert_eq!(&b[..], b"42");
        assert_eq!(distance(&a, &b), a.len());
    }

    /// How far `b` starts after `a` (both from one block).
    fn distance(a: &Bytes, b: &Bytes) -> usize {
        (b.as_ptr() as usize) - (a.as_ptr() as usize)
    }
}
