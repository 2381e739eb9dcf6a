//! The RDB primitives an encoded payload is made of, mirroring `reader.rs`:
//! lengths (`rdbSaveLen`), strings (`rdbSaveRawString`, without LZF),
//! doubles, millisecond times and raw stream IDs.

use crate::reader::canonical_i64;
use crate::StreamId;

/// An RDB object being written.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(type_byte: u8, capacity: usize) -> Writer {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(type_byte);
        Writer { buf }
    }

    pub(crate) fn len(&mut self, n: u64) {
        if n < 1 << 6 {
            self.buf.push(n as u8);
        } else if n < 1 << 14 {
            self.buf.push(0x40 | (n >> 8) as u8);
            self.buf.push((n & 0xff) as u8);
        } else if n <= u64::from(u32::MAX) {
            self.buf.push(0x80);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(0x81);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    pub(crate) fn count(&mut self, n: usize) {
        self.len(n as u64);
    }

    /// A string: integer-encoded when it is a canonical integer that fits
    /// 32 bits (so it reads back as the same bytes), else verbatim.
    pub(crate) fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(v) = canonical_i64(s) {
                if let Ok(v8) = i8::try_from(v) {
                    self.buf.push(0xc0);
                    self.buf.extend_from_slice(&v8.to_le_bytes());
                    return;
                }
                if let Ok(v16) = i16::try_from(v) {
                    self.buf.push(0xc1);
                    self.buf.extend_from_slice(&v16.to_le_bytes());
                    return;
                }
                if let Ok(v32) = i32::try_from(v) {
                    self.buf.push(0xc2);
                    self.buf.extend_from_slice(&v32.to_le_bytes());
                    return;
                }
            }
        }
        self.count(s.len());
        self.buf.extend_from_slice(s);
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn ms(&mut self, t: u64) {
        self.buf.extend_from_slice(&t.to_le_bytes());
    }

    pub(crate) fn binary_f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A text double (`rdbSaveDoubleValue`), for targets before binary
    /// scores: the shortest exponent form that reads back exactly.
    pub(crate) fn text_f64(&mut self, v: f64) {
        if v == f64::INFINITY {
            self.buf.push(254);
        } else if v == f64::NEG_INFINITY {
            self.buf.push(255);
        } else {
            let text = format!("{v:e}");
            self.buf.push(text.len() as u8);
            self.buf.extend_from_slice(text.as_bytes());
        }
    }

    /// A stream ID in its 16-byte big-endian radix-tree form.
    pub(crate) fn raw_id(&mut self, id: StreamId) {
        self.buf.extend_from_slice(&raw_id(id));
    }
}

pub(crate) fn raw_id(id: StreamId) -> [u8; 16] {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&id.ms.to_be_bytes());
    raw[8..].copy_from_slice(&id.seq.to_be_bytes());
    raw
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::reader::{Ctx, Reader};
    use crate::Limits;

    #[test]
    fn lengths_and_strings_read_back() {
        let lens = [
            0u64,
            63,
            64,
            16383,
            16384,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX,
        ];
        let strings: [&[u8]; 12] = [
            b"",
            b"0",
            b"-128",
            b"127",
            b"128",
            b"-32769",
            b"2147483647",
            b"2147483648",
            b"-0",
            b"007",
            b"12345678901",
            b"hello",
        ];
        let mut w = Writer::new(0, 64);
        for &n in &lens {
            w.len(n);
        }
        for s in strings {
            w.string(s);
        }
        let data = Bytes::from(w.buf);
        let mut r = Reader::new(&data, 1, data.len(), 0);
        let mut ctx = Ctx::new(Limits::for_payload(0));
        for &n in &lens {
            assert_eq!(r.len("len"), Ok(n));
        }
        for s in strings {
            assert_eq!(r.string(&mut ctx, "s").as_deref(), Ok(s));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn small_integers_take_the_integer_encodings() {
        let mut w = Writer::new(0, 8);
        w.string(b"-7");
        w.string(b"12345");
        assert_eq!(w.buf, vec![0, 0xc0, 0xf9, 0xc1, 0x39, 0x30]);
    }

    #[test]
    fn text_doubles_read_back_exactly() {
        let values = [
            0.1,
            -0.0,
            1e300,
            -1.7976931348623157e308,
            5e-324,
            3.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut w = Writer::new(0, 64);
        for &v in &values {
            w.text_f64(v);
        }
        let data = Bytes::from(w.buf);
        let mut r = Reader::new(&data, 1, data.len(), 0);
        for &v in &values {
            let got = r.text_f64().expect("score");
            assert_eq!(got.to_bits(), v.to_bits(), "{v}");
        }
    }
}
