//! Ziplists (Redis before 7.0: small lists, hashes and sorted sets, and
//! the nodes of quicklist type 14): read only, since no encoder needs them.
//!
//! Layout: `zlbytes u32 LE | zltail u32 LE | zllen u16 LE (65535: unknown) |
//! entries | 0xFF`. An entry is `prevlen` (1 byte, or 0xFE and a u32 LE),
//! an encoding byte with the string length or integer kind, and the data.
//! As in Redis' `ziplistValidateIntegrity`, each `prevlen` must equal the
//! previous entry's size and `zltail` must point at the last entry.

use bytes::Bytes;

use crate::blob::Blob;
use crate::listpack::Elem;
use crate::Error;

const HEADER: usize = 10;
const END: u8 = 0xff;
const BIG_PREVLEN: u8 = 0xfe;

/// A cursor over a ziplist's entries.
pub(crate) struct Ziplist<'a> {
    blob: Blob<'a>,
    pos: usize,
    tail: usize,
    declared: Option<usize>,
    seen: usize,
    prev_len: usize,
    last_start: usize,
}

impl<'a> Ziplist<'a> {
    /// Checks the header of `data`, a whole ziplist; `at` is where its
    /// string starts in the payload.
    pub(crate) fn new(data: &'a Bytes, at: usize) -> Result<Ziplist<'a>, Error> {
        let corrupt = |what| Error::Corrupt { offset: at, what };
        if data.len() < HEADER + 1 {
            return Err(corrupt("ziplist (shorter than its header)"));
        }
        let u32_at = |i: usize| {
            u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize
        };
        if u32_at(0) != data.len() || data[data.len() - 1] != END {
            return Err(corrupt("ziplist header"));
        }
        let count = u16::from_le_bytes([data[8], data[9]]);
        Ok(Ziplist {
            blob: Blob::new(data, data.len() - 1, at),
            pos: HEADER,
            tail: u32_at(4),
            declared: (count != u16::MAX).then_some(usize::from(count)),
            seen: 0,
            prev_len: 0,
            last_start: HEADER,
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

    fn bytes(&self, from: usize, n: usize) -> Result<&'a [u8], Error> {
        self.blob.bytes(from, n)
    }

    /// The next element, or `None` after the last.
    pub(crate) fn next(&mut self) -> Result<Option<Elem>, Error> {
        if self.pos == self.blob.end() {
            if self.declared.is_some_and(|n| n != self.seen) {
                return Err(self.corrupt("ziplist count"));
            }
            if self.tail != self.last_start {
                return Err(self.corrupt("ziplist tail offset"));
            }
            return Ok(None);
        }
        let start = self.pos;
        let first = self.bytes(start, 1)?[0];
        let (prevlen, mut p) = match first {
            END => return Err(self.corrupt("ziplist (end marker before the end)")),
            BIG_PREVLEN => {
                let b = self.bytes(start + 1, 4)?;
                (
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
                    start + 5,
                )
            }
            n => (usize::from(n), start + 1),
        };
        if prevlen != self.prev_len {
            return Err(self.corrupt("ziplist entry (prevlen)"));
        }
        let enc = self.bytes(p, 1)?[0];
        p += 1;
        let elem = match enc >> 6 {
            0 => self.string(&mut p, usize::from(enc & 0x3f))?,
            1 => {
                let n = (usize::from(enc & 0x3f) << 8) | usize::from(self.bytes(p, 1)?[0]);
                p += 1;
                self.string(&mut p, n)?
            }
            2 => {
                let b = self.bytes(p, 4)?;
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                p += 4;
                self.string(&mut p, n)?
            }
            _ => {
                let v = match enc {
                    0xc0 => self.int(&mut p, 2)?,
                    0xd0 => self.int(&mut p, 4)?,
                    0xe0 => self.int(&mut p, 8)?,
                    0xf0 => self.int(&mut p, 3)?,
                    0xfe => self.int(&mut p, 1)?,
                    0xf1..=0xfd => i64::from(enc & 0x0f) - 1,
                    _ => return Err(self.corrupt("ziplist entry encoding")),
                };
                Elem::Int(v)
            }
        };
        self.prev_len = p - start;
        self.last_start = start;
        self.pos = p;
        self.seen += 1;
        Ok(Some(elem))
    }

    fn string(&self, p: &mut usize, n: usize) -> Result<Elem, Error> {
        let s = self.blob.string(*p, n)?;
        *p += n;
        Ok(s)
    }

    fn int(&self, p: &mut usize, width: usize) -> Result<i64, Error> {
        let v = self.blob.int(*p, width)?;
        *p += width;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ziplist built by hand from the layout in Redis' ziplist.c.
    fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut last = HEADER;
        for e in entries {
            last = HEADER + body.len();
            let mut entry = Vec::new();
            if prev < 254 {
                entry.push(prev as u8);
            } else {
                entry.push(BIG_PREVLEN);
                entry.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            entry.extend_from_slice(e);
            prev = entry.len();
            body.extend_from_slice(&entry);
        }
        let mut zl = Vec::new();
        zl.extend_from_slice(&((HEADER + body.len() + 1) as u32).to_le_bytes());
        zl.extend_from_slice(&(last as u32).to_le_bytes());
        zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(END);
        zl
    }

    fn read_all(zl: Vec<u8>) -> Result<Vec<Elem>, Error> {
        let data = Bytes::from(zl);
        let mut reader = Ziplist::new(&data, 0)?;
        let mut out = Vec::new();
        while let Some(e) = reader.next()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn the_example_of_ziplist_c() {
        // "2" and "5": [0f 00 00 00] [0c 00 00 00] [02 00] [00 f3] [02 f6] [ff]
        let zl = vec![
            0x0f, 0, 0, 0, 0x0c, 0, 0, 0, 2, 0, 0x00, 0xf3, 0x02, 0xf6, 0xff,
        ];
        assert_eq!(read_all(zl), Ok(vec![Elem::Int(2), Elem::Int(5)]));
    }

    #[test]
    fn every_encoding() {
        let long = vec![b'y'; 300];
        let mut long_enc = vec![0x41, 0x2c]; // 14-bit length 300
        long_enc.extend_from_slice(&long);
        let huge = vec![b'z'; 16384];
        let mut huge_enc = vec![0x80, 0, 0, 0x40, 0];
        huge_enc.extend_from_slice(&huge);
        let entries: Vec<Vec<u8>> = vec![
            vec![0x03, b'a', b'b', b'c'],
            long_enc,
            huge_enc,
            vec![0xc0, 0x00, 0x80],                // int16 -32768
            vec![0xd0, 0xff, 0xff, 0xff, 0x7f],    // int32 max
            vec![0xe0, 0, 0, 0, 0, 0, 0, 0, 0x80], // int64 min
            vec![0xf0, 0xff, 0xff, 0x7f],          // int24 max
            vec![0xfe, 0x80],                      // int8 -128
            vec![0xf1],                            // 0
            vec![0xfd],                            // 12
        ];
        let refs: Vec<&[u8]> = entries.iter().map(|e| e.as_slice()).collect();
        let got = read_all(ziplist(&refs)).expect("valid");
        assert_eq!(
            got,
            vec![
                Elem::Str(Bytes::from_static(b"abc")),
                Elem::Str(Bytes::from(long)),
                Elem::Str(Bytes::from(huge)),
                Elem::Int(-32768),
                Elem::Int(i64::from(i32::MAX)),
                Elem::Int(i64::MIN),
                Elem::Int(8_388_607),
                Elem::Int(-128),
                Elem::Int(0),
                Elem::Int(12),
            ]
        );
    }

    #[test]
    fn inconsistent_ziplists_are_refused() {
        let good = ziplist(&[&[0x01, b'a'], &[0xf2]]);
        assert!(read_all(good.clone()).is_ok());
        let mut bad_prevlen = good.clone();
        bad_prevlen[HEADER + 3] = 5;
        assert!(read_all(bad_prevlen).is_err());
        let mut bad_tail = good.clone();
        bad_tail[4] = 10;
        assert!(read_all(bad_tail).is_err());
        let mut bad_count = good.clone();
        bad_count[8] = 3;
        assert!(read_all(bad_count).is_err());
        let mut bad_encoding = good.clone();
        bad_encoding[HEADER + 4] = 0xc1;
        assert!(read_all(bad_encoding).is_err());
        // Whatever a flipped bit makes of it, reading must not panic.
        for i in 0..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0x40;
            let _ = read_all(flipped);
        }
    }
}
