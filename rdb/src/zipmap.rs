//! Zipmaps (`RDB_TYPE_HASH_ZIPMAP`, small hashes before Redis 2.6): read only.
//!
//! Layout: `zmlen u8 | (len key len free value pad)* | 0xFF`. A `len` is
//! one byte below 254, or 254 and a u32 (host order; little-endian on every
//! machine Redis ran on in practice); `free` counts padding bytes after the
//! value. `zmlen` is the pair count when below 254.

use bytes::Bytes;

use crate::reader::Ctx;
use crate::{Error, HashField};

const BIGLEN: u8 = 254;
const END: u8 = 255;

/// The fields of the zipmap `data`; `at` is where its string starts.
pub(crate) fn fields(data: &Bytes, at: usize, ctx: &mut Ctx) -> Result<Vec<HashField>, Error> {
    let corrupt = |what| Error::Corrupt { offset: at, what };
    let declared = *data.first().ok_or(corrupt("zipmap (empty)"))?;
    let mut p = 1;
    // Each field takes at least 3 bytes (two lengths and a free byte).
    let mut out = ctx.vec_for(u64::from(declared), data.len(), 3)?;
    loop {
        let key = match read_len(data, &mut p).ok_or(corrupt("zipmap length"))? {
            None => break,
            Some(n) => take(data, &mut p, n).ok_or(corrupt("zipmap key"))?,
        };
        let len = read_len(data, &mut p)
            .flatten()
            .ok_or(corrupt("zipmap value length"))?;
        let free = usize::from(*data.get(p).ok_or(corrupt("zipmap free byte"))?);
        p += 1;
        let value = take(data, &mut p, len).ok_or(corrupt("zipmap value"))?;
        take(data, &mut p, free).ok_or(corrupt("zipmap padding"))?;
        ctx.push(&mut out, HashField::new(key, value))?;
    }
    if p != data.len() {
        return Err(corrupt("zipmap (bytes after the end marker)"));
    }
    if declared < BIGLEN && usize::from(declared) != out.len() {
        return Err(corrupt("zipmap count"));
    }
    Ok(out)
}

/// A length, `Some(None)` at the end marker, `None` if cut short.
fn read_len(data: &Bytes, p: &mut usize) -> Option<Option<usize>> {
    let first = *data.get(*p)?;
    *p += 1;
    match first {
        END => Some(None),
        BIGLEN => {
            let b = data.get(*p..*p + 4)?;
            *p += 4;
            Some(Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize))
        }
        n => Some(Some(usize::from(n))),
    }
}

fn take(data: &Bytes, p: &mut usize, n: usize) -> Option<Bytes> {
    let end = p.checked_add(n).filter(|&e| e <= data.len())?;
    let s = data.slice(*p..end);
    *p = end;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn the_example_of_zipmap_c() {
        let mut ctx = Ctx::new(Limits::for_payload(0));
        let data = Bytes::from_static(b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff");
        assert_eq!(
            fields(&data, 0, &mut ctx),
            Ok(vec![
                HashField::new("foo", "bar"),
                HashField::new("hello", "world")
            ])
        );
    }

    #[test]
    fn padding_and_big_lengths() {
        let mut ctx = Ctx::new(Limits::for_payload(0));
        let mut data = vec![1, 1, b'k', 254, 0, 1, 0, 0, 2];
        data.extend_from_slice(&[b'v'; 256]);
        data.extend_from_slice(&[0, 0, 0xff]);
        let got = fields(&Bytes::from(data), 0, &mut ctx).expect("zipmap");
        assert_eq!(got, vec![HashField::new("k", vec![b'v'; 256])]);
    }

    #[test]
    fn damaged_zipmaps_are_refused() {
        let mut ctx = Ctx::new(Limits::for_payload(0));
        for bad in [
            &b"\x01\x03foo\x03\x00ba"[..],       // cut inside a value
            &b"\x02\x03foo\x03\x00bar\xff"[..],  // count says 2
            &b"\x01\x03foo\xff"[..],             // end marker as a value length
            &b"\x01\x03foo\x03\x00bar\xffX"[..], // bytes after the end
            &b""[..],
        ] {
            assert!(
                fields(&Bytes::from_static(bad), 0, &mut ctx).is_err(),
                "{bad:?}"
            );
        }
    }
}
