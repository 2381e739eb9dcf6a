//! A bounds-checked view of one encoded blob (a listpack or a ziplist taken
//! out of a payload), shared by their cursors: every read is checked
//! against the blob's end marker, and errors name where the blob's string
//! starts in the payload.

use bytes::Bytes;

use crate::listpack::Elem;
use crate::Error;

pub(crate) struct Blob<'a> {
    data: &'a Bytes,
    /// Index of the end marker: entries lie before it.
    end: usize,
    /// Where the blob's string starts in the payload.
    at: usize,
}

impl<'a> Blob<'a> {
    pub(crate) fn new(data: &'a Bytes, end: usize, at: usize) -> Blob<'a> {
        Blob { data, end, at }
    }

    pub(crate) fn end(&self) -> usize {
        self.end
    }

    pub(crate) fn corrupt(&self, what: &'static str) -> Error {
        Error::Corrupt {
            offset: self.at,
            what,
        }
    }

    /// `n` bytes from `from`, all before the end marker.
    pub(crate) fn bytes(&self, from: usize, n: usize) -> Result<&'a [u8], Error> {
        let data: &'a Bytes = self.data;
        match from.checked_add(n) {
            Some(to) if to <= self.end => Ok(&data[from..to]),
            _ => Err(self.corrupt("encoded entry (runs past the end)")),
        }
    }

    /// A string element of `n` bytes from `from`, sharing the blob's buffer.
    pub(crate) fn string(&self, from: usize, n: usize) -> Result<Elem, Error> {
        self.bytes(from, n)?;
        Ok(Elem::Str(self.data.slice(from..from + n)))
    }

    /// A signed little-endian integer of `width` (1 to 8) bytes from `from`.
    pub(crate) fn int(&self, from: usize, width: usize) -> Result<i64, Error> {
        Ok(sign_extend_le(self.bytes(from, width)?))
    }
}

/// The signed integer stored little-endian in `raw` (1 to 8 bytes).
pub(crate) fn sign_extend_le(raw: &[u8]) -> i64 {
    let width = raw.len().min(8);
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(&raw[..width]);
    let shift = 64 - 8 * width as u32;
    ((u64::from_le_bytes(buf) << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extension_of_every_width() {
        assert_eq!(sign_extend_le(&[0xff]), -1);
        assert_eq!(sign_extend_le(&[0x7f]), 127);
        assert_eq!(sign_extend_le(&[0x00, 0x80]), -32768);
        assert_eq!(sign_extend_le(&[0xff, 0xff, 0x7f]), 8_388_607);
        assert_eq!(sign_extend_le(&[0, 0, 0, 0x80]), i64::from(i32::MIN));
        assert_eq!(sign_extend_le(&i64::MIN.to_le_bytes()), i64::MIN);
    }

    #[test]
    fn reads_stop_at_the_end_marker() {
        let data = Bytes::from_static(b"abcd\xff");
        let blob = Blob::new(&data, 4, 7);
        assert_eq!(blob.bytes(0, 4), Ok(&b"abcd"[..]));
        assert_eq!(
            blob.bytes(1, 4),
            Err(Error::Corrupt {
                offset: 7,
                what: "encoded entry (runs past the end)"
            })
        );
        assert!(blob.bytes(usize::MAX, 2).is_err());
    }
}
