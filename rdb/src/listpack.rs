//! Listpacks (Redis 5.0+, the compact encoding of small hashes, sets,
//! sorted sets, list nodes and stream nodes): read and write.
//!
//! Layout: `total-bytes u32 LE | count u16 LE (65535: unknown) | entries |
//! 0xFF`. Each entry is an encoding byte (with the length or the integer
//! packed into it), its data, then `backlen`: the entry's length so far,
//! written back to front in 7-bit groups so the list can be walked from the
//! tail. Every field is bounds-checked and every backlen compared with the
//! entry it closes, as Redis' deep sanitization does.

use bytes::Bytes;

use crate::blob::Blob;
use crate::reader::{canonical_i64, Ctx};
use crate::Error;

const HEADER: usize = 6;
const EOF: u8 = 0xff;
/// The count field's "too many to count" value.
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One listpack (or ziplist) element: a string, or an integer the server
/// stored as such (it reads back as its decimal string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    Str(Bytes),
    Int(i64),
}

impl Elem {
    /// The element as the server returns it.
    pub(crate) fn into_bytes(self, ctx: &mut Ctx) -> Result<Bytes, Error> {
        match self {
            Elem::Str(s) => Ok(s),
            Elem::Int(v) => ctx.int(v),
        }
    }
}

/// A cursor over a listpack's entries.
pub(crate) struct Listpack<'a> {
    blob: Blob<'a>,
    pos: usize,
    declared: Option<usize>,
    seen: usize,
}

impl<'a> Listpack<'a> {
    /// Checks the header of `data`, a whole listpack; `at` is where its
    /// string starts in the payload.
    pub(crate) fn new(data: &'a Bytes, at: usize) -> Result<Listpack<'a>, Error> {
        let corrupt = |what| Error::Corrupt { offset: at, what };
        if data.len() < HEADER + 1 {
            return Err(corrupt("listpack (shorter than its header)"));
        }
        let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if total != data.len() || data[data.len() - 1] != EOF {
            return Err(corrupt("listpack header"));
        }
        let count = u16::from_le_bytes([data[4], data[5]]);
        Ok(Listpack {
            blob: Blob::new(data, data.len() - 1, at),
            pos: HEADER,
            declared: (count != COUNT_UNKNOWN).then_some(usize::from(count)),
            seen: 0,
        })
    }

    /// The element count the header declares, when it does.
    pub(crate) fn declared(&self) -> Option<usize> {
        self.declared
    }

    /// Bytes of entries not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.blob.end() - self.pos
    }

    pub(crate) fn corrupt(&self, what: &'static str) -> Error {
        self.blob.corrupt(what)
    }

    /// The next element, or `None` after the last.
    pub(crate) fn next(&mut self) -> Result<Option<Elem>, Error> {
        let blob = &self.blob;
        if self.pos == blob.end() {
            if self.declared.is_some_and(|n| n != self.seen) {
                return Err(blob.corrupt("listpack count"));
            }
            return Ok(None);
        }
        let p = self.pos;
        let b = blob.bytes(p, 1)?[0];
        let (elem, len) = if b & 0x80 == 0 {
            (Elem::Int(i64::from(b & 0x7f)), 1)
        } else if b & 0xc0 == 0x80 {
            let n = usize::from(b & 0x3f);
            (blob.string(p + 1, n)?, 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let raw = (i64::from(b & 0x1f) << 8) | i64::from(blob.bytes(p + 1, 1)?[0]);
            let v = if raw >= 1 << 12 { raw - (1 << 13) } else { raw };
            (Elem::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = (usize::from(b & 0x0f) << 8) | usize::from(blob.bytes(p + 1, 1)?[0]);
            (blob.string(p + 2, n)?, 2 + n)
        } else {
            match b {
                0xf0 => {
                    let n = blob.int(p + 1, 4)? as u32 as usize;
                    (blob.string(p + 5, n)?, 5 + n)
                }
                0xf1 => (Elem::Int(blob.int(p + 1, 2)?), 3),
                0xf2 => (Elem::Int(blob.int(p + 1, 3)?), 4),
                0xf3 => (Elem::Int(blob.int(p + 1, 4)?), 5),
                0xf4 => (Elem::Int(blob.int(p + 1, 8)?), 9),
                EOF => return Err(blob.corrupt("listpack (end marker before the end)")),
                _ => return Err(blob.corrupt("listpack entry encoding")),
            }
        };
        let mut expected = [0u8; 5];
        let backlen = encode_backlen(len as u64, &mut expected);
        // Byte by byte: for 1 to 5 bytes a memcmp call costs more.
        let actual = blob.bytes(p + len, backlen)?;
        if (0..backlen).any(|i| actual[i] != expected[i]) {
            return Err(blob.corrupt("listpack entry length (backlen)"));
        }
        self.pos = p + len + backlen;
        self.seen += 1;
        Ok(Some(elem))
    }

    /// The next element as bytes, failing if the listpack ends.
    pub(crate) fn expect(&mut self, ctx: &mut Ctx) -> Result<Bytes, Error> {
        match self.next()? {
            Some(e) => e.into_bytes(ctx),
            None => Err(self.corrupt("listpack (ends inside a record)")),
        }
    }

    /// The next element as an integer, failing if it is not one.
    pub(crate) fn expect_int(&mut self) -> Result<i64, Error> {
        match self.next()? {
            Some(Elem::Int(v)) => Ok(v),
            Some(Elem::Str(s)) => canonical_i64(&s).ok_or_else(|| self.corrupt("listpack integer")),
            None => Err(self.corrupt("listpack (ends inside a record)")),
        }
    }
}

/// Writes the backlen of an entry of `len` bytes into `buf`; returns its size.
fn encode_backlen(len: u64, buf: &mut [u8; 5]) -> usize {
    if len <= 127 {
        buf[0] = len as u8;
        1
    } else if len < 16383 {
        buf[0] = (len >> 7) as u8;
        buf[1] = ((len & 127) | 128) as u8;
        2
    } else if len < 2_097_151 {
        buf[0] = (len >> 14) as u8;
        buf[1] = (((len >> 7) & 127) | 128) as u8;
        buf[2] = ((len & 127) | 128) as u8;
        3
    } else if len < 268_435_455 {
        buf[0] = (len >> 21) as u8;
        buf[1] = (((len >> 14) & 127) | 128) as u8;
        buf[2] = (((len >> 7) & 127) | 128) as u8;
        buf[3] = ((len & 127) | 128) as u8;
        4
    } else {
        buf[0] = (len >> 28) as u8;
        buf[1] = (((len >> 21) & 127) | 128) as u8;
        buf[2] = (((len >> 14) & 127) | 128) as u8;
        buf[3] = (((len >> 7) & 127) | 128) as u8;
        buf[4] = ((len & 127) | 128) as u8;
        5
    }
}

/// Builds a listpack the way Redis' `lpAppend` does: a string that is a
/// canonical integer is stored as an integer, in the smallest width.
pub(crate) struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl ListpackWriter {
    pub(crate) fn new() -> ListpackWriter {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; HEADER]);
        ListpackWriter { buf, count: 0 }
    }

    /// Bytes written so far (header included, terminator not).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn push(&mut self, s: &[u8]) {
        match canonical_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push((n & 0xff) as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.close(start);
    }

    pub(crate) fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v & 0x1fff) as u16;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push((u & 0xff) as u8);
        } else {
            let (tag, width) = if (-32768..=32767).contains(&v) {
                (0xf1, 2)
            } else if (-8_388_608..=8_388_607).contains(&v) {
                (0xf2, 3)
            } else if (-2_147_483_648..=2_147_483_647).contains(&v) {
                (0xf3, 4)
            } else {
                (0xf4, 8)
            };
            self.buf.push(tag);
            self.buf.extend_from_slice(&v.to_le_bytes()[..width]);
        }
        self.close(start);
    }

    fn close(&mut self, start: usize) {
        let mut backlen = [0u8; 5];
        let n = encode_backlen((self.buf.len() - start) as u64, &mut backlen);
        self.buf.extend_from_slice(&backlen[..n]);
        self.count += 1;
    }

    /// Appends the entries `other` holds (its header is dropped): entries
    /// are self-contained, so a listpack can be built out of order.
    pub(crate) fn append(&mut self, other: ListpackWriter) {
        self.buf.extend_from_slice(&other.buf[HEADER..]);
        self.count += other.count;
    }

    /// The finished listpack.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count)
            .ok()
            .filter(|&c| c != COUNT_UNKNOWN)
            .unwrap_or(COUNT_UNKNOWN);
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn read_all(lp: Vec<u8>) -> Result<Vec<Elem>, Error> {
        let data = Bytes::from(lp);
        let mut reader = Listpack::new(&data, 0)?;
        let mut out = Vec::new();
        while let Some(e) = reader.next()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn every_integer_width_and_string_length_round_trips() {
        let ints = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            8_388_607,
            -8_388_608,
            2_147_483_647,
            -2_147_483_648,
            i64::MAX,
            i64::MIN,
        ];
        let strings: Vec<Vec<u8>> = [0usize, 1, 63, 64, 4095, 4096, 20000]
            .iter()
            .map(|&n| vec![b'x'; n])
            .collect();
        let mut w = ListpackWriter::new();
        for &v in &ints {
            w.push_int(v);
        }
        for s in &strings {
            w.push(s);
        }
        w.push(b"007");
        let got = read_all(w.finish()).expect("valid listpack");
        let mut want: Vec<Elem> = ints.iter().map(|&v| Elem::Int(v)).collect();
        want.extend(strings.iter().map(|s| Elem::Str(Bytes::from(s.clone()))));
        want.push(Elem::Str(Bytes::from_static(b"007")));
        assert_eq!(got, want);
    }

    #[test]
    fn matches_what_redis_writes() {
        // A listpack hash {a: 1, b: hello, c: -300} from Redis 7.0's DUMP,
        // after the type byte and the string length.
        let payload = include_bytes!("../tests/fixtures/redis-7.0/hash_small.dump");
        let lp = &payload[2..payload.len() - 10];
        let mut w = ListpackWriter::new();
        for s in [&b"a"[..], b"1", b"b", b"hello", b"c", b"-300"] {
            w.push(s);
        }
        assert_eq!(w.finish(), lp.to_vec());
    }

    #[test]
    fn damaged_listpacks_are_refused() {
        let mut w = ListpackWriter::new();
        w.push(b"hello");
        w.push_int(1000);
        let good = w.finish();
        assert!(read_all(good.clone()).is_ok());
        // Whatever a flipped bit makes of it, reading must not panic.
        for i in 0..good.len() {
            for delta in [1u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= delta;
                let _ = read_all(bad);
            }
        }
        let mut short = good.clone();
        short.truncate(good.len() - 1);
        assert!(read_all(short).is_err());
        let mut wrong_count = good.clone();
        wrong_count[4] = 3;
        assert!(read_all(wrong_count).is_err());
        let mut bad_backlen = good;
        bad_backlen[6 + 6] = 9; // the backlen of "hello" (1 + 5 bytes)
        assert!(read_all(bad_backlen).is_err());
    }

    #[test]
    fn expect_int_accepts_only_integers() {
        let mut w = ListpackWriter::new();
        w.push(b"12");
        w.push(b"x");
        let data = Bytes::from(w.finish());
        let mut lp = Listpack::new(&data, 0).expect("header");
        assert_eq!(lp.expect_int(), Ok(12));
        assert!(lp.expect_int().is_err());
        let mut ctx = Ctx::new(Limits::for_payload(0));
        assert!(lp.expect(&mut ctx).is_err());
    }
}
