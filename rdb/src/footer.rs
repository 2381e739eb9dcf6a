//! The DUMP payload's framing: `[type u8][object][version u16 LE][CRC u64 LE]`,
//! the CRC-64/Jones of everything before it (`createDumpPayload` and
//! `verifyDumpPayload` in Redis' cluster.c).

use crate::crc64::crc64;
use crate::Error;

/// Version and CRC.
pub(crate) const FOOTER_LEN: usize = 10;

/// The RDB version in a payload's footer, without checking its CRC: the
/// cheap test of whether a target will accept it.
pub fn payload_version(payload: &[u8]) -> Option<u16> {
    let at = payload.len().checked_sub(FOOTER_LEN)?;
    Some(u16::from_le_bytes([payload[at], payload[at + 1]]))
}

/// Checks a payload's framing and CRC; returns its type byte and version.
///
/// # Errors
///
/// [`Error::TooShort`] without room for a type byte and the footer,
/// [`Error::Checksum`] when the CRC does not match.
pub fn verify(payload: &[u8]) -> Result<(u8, u16), Error> {
    if payload.len() < FOOTER_LEN + 1 {
        return Err(Error::TooShort { len: payload.len() });
    }
    let (covered, crc) = payload.split_at(payload.len() - 8);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(crc);
    let stored = u64::from_le_bytes(stored);
    let computed = crc64(covered);
    if stored != computed {
        return Err(Error::Checksum { stored, computed });
    }
    let at = covered.len() - 2;
    Ok((
        payload[0],
        u16::from_le_bytes([covered[at], covered[at + 1]]),
    ))
}

/// The same payload with `version` in its footer and a matching CRC: the
/// cheap path when the target knows the payload's type but refuses its
/// version number. The original CRC is checked first, so a damaged
/// payload is never given a valid checksum.
///
/// # Errors
///
/// As [`verify`].
pub fn rewrite_footer(payload: &[u8], version: u16) -> Result<Vec<u8>, Error> {
    verify(payload)?;
    Ok(reseal(payload, version))
}

/// [`rewrite_footer`] of a payload [`verify`] has already passed.
pub(crate) fn reseal(payload: &[u8], version: u16) -> Vec<u8> {
    let body = &payload[..payload.len() - FOOTER_LEN];
    let mut out = Vec::with_capacity(payload.len());
    out.extend_from_slice(body);
    seal(&mut out, version);
    out
}

/// Appends the footer for `version` to an encoded type byte and object.
pub(crate) fn seal(out: &mut Vec<u8>, version: u16) {
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = include_bytes!("../tests/fixtures/valkey-9.1/str_raw.dump");

    #[test]
    fn reads_type_and_version_of_a_real_payload() {
        assert_eq!(verify(PAYLOAD), Ok((0, 80)));
        assert_eq!(payload_version(PAYLOAD), Some(80));
        assert_eq!(payload_version(&PAYLOAD[..9]), None);
    }

    #[test]
    fn rewrite_changes_only_the_footer() {
        let rewritten = rewrite_footer(PAYLOAD, 10).expect("valid payload");
        assert_eq!(rewritten.len(), PAYLOAD.len());
        assert_eq!(
            rewritten[..PAYLOAD.len() - 10],
            PAYLOAD[..PAYLOAD.len() - 10]
        );
        assert_eq!(verify(&rewritten), Ok((0, 10)));
        // And it matches what Redis 7.0 itself writes for the same value.
        let redis = include_bytes!("../tests/fixtures/redis-7.0/str_raw.dump");
        assert_eq!(rewritten, redis.to_vec());
    }

    #[test]
    fn damage_anywhere_is_caught() {
        for i in 0..PAYLOAD.len() {
            let mut bad = PAYLOAD.to_vec();
            bad[i] ^= 1;
            assert!(
                matches!(verify(&bad), Err(Error::Checksum { .. })),
                "byte {i}"
            );
            assert!(rewrite_footer(&bad, 10).is_err());
        }
    }

    #[test]
    fn too_short() {
        assert_eq!(verify(&PAYLOAD[..10]), Err(Error::TooShort { len: 10 }));
        assert_eq!(verify(&[]), Err(Error::TooShort { len: 0 }));
    }
}
