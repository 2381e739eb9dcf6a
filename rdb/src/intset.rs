//! Intsets (`RDB_TYPE_SET_INTSET`, small sets of integers): read only.
//!
//! Layout: `encoding u32 LE (2, 4 or 8: bytes per member) | length u32 LE |
//! members`, signed little-endian, ascending. Order and uniqueness are left
//! to the target to check, as its `RESTORE` does.

use bytes::Bytes;

use crate::blob::sign_extend_le;
use crate::reader::Ctx;
use crate::Error;

/// The members of the intset `data`, as decimal strings; `at` is where its
/// string starts in the payload.
pub(crate) fn members(data: &Bytes, at: usize, ctx: &mut Ctx) -> Result<Vec<Bytes>, Error> {
    let corrupt = |what| Error::Corrupt { offset: at, what };
    if data.len() < 8 {
        return Err(corrupt("intset (shorter than its header)"));
    }
    let width = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let count = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(corrupt("intset encoding"));
    }
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(data.len()) {
        return Err(corrupt("intset length"));
    }
    let mut out = ctx.vec_for(count as u64, data.len(), width)?;
    for member in data[8..].chunks_exact(width) {
        let s = ctx.int(sign_extend_le(member))?;
        ctx.push(&mut out, s)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn every_width() {
        let mut ctx = Ctx::new(Limits::for_payload(0));
        let data = Bytes::from_static(&[2, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0x10, 0x00]);
        let got = members(&data, 0, &mut ctx).expect("intset");
        assert_eq!(
            got,
            vec![Bytes::from_static(b"-1"), Bytes::from_static(b"16")]
        );
        let mut data = vec![8, 0, 0, 0, 1, 0, 0, 0];
        data.extend_from_slice(&i64::MIN.to_le_bytes());
        let got = members(&Bytes::from(data), 0, &mut ctx).expect("intset");
        assert_eq!(got, vec![Bytes::from_static(b"-9223372036854775808")]);
        let mut data = vec![4, 0, 0, 0, 1, 0, 0, 0];
        data.extend_from_slice(&(-5i32).to_le_bytes());
        let got = members(&Bytes::from(data), 0, &mut ctx).expect("intset");
        assert_eq!(got, vec![Bytes::from_static(b"-5")]);
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut ctx = Ctx::new(Limits::for_payload(0));
        for bad in [
            &[2, 0, 0, 0, 2, 0, 0, 0, 1, 0][..],    // too short for 2 members
            &[3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0][..], // width 3
            &[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff][..], // count overflows
            &[2, 0, 0][..],
        ] {
            assert!(members(&Bytes::copy_from_slice(bad), 0, &mut ctx).is_err());
        }
    }
}
