//! The first look at one key: the source's value (an [`Item`]: its DUMP
//! payload and absolute expiry) against what the target's `DUMP` and expiry
//! read returned. Pure: no I/O, no clock of its own.
//!
//! Equal bodies (the payloads without their footers, see
//! [`payload::body`]) are equal values. Different bodies go on to a
//! comparison of contents ([`Look::Contents`]), unless the types alone
//! already differ.

use bytes::Bytes;

use crate::engine::item::Item;
use crate::verify::payload::{self, Kind};

/// The largest difference between two absolute expiry times that is still
/// the same expiry: the contract's "within 1 s", which absorbs a copy that
/// had to send TTLs relative to its own clock.
pub const EXPIRY_TOLERANCE_MS: u64 = 1000;

/// What the target answered for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The `DUMP` payload; `None` when the key is absent.
    pub payload: Option<Bytes>,
    /// Absolute expiry in Unix ms, `-1` when it has none, `-2` when the key
    /// is absent; `None` when expiry is not compared (`--no-ttl`).
    pub expire_at_ms: Option<i64>,
}

/// Two expiry times that disagree, for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiries {
    /// The source's absolute expiry in Unix ms, 0 when it has none.
    pub source: u64,
    /// The target's, -1 when it has none.
    pub target: i64,
}

/// What the first look found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Look {
    /// Same value and same expiry.
    Same,
    /// Absent on the target.
    Missing,
    /// Absent on the target, but due to expire on the source within the
    /// tolerance: it was (or is about to be) gone on both, not a difference.
    Expired,
    /// Same value, another expiry.
    TtlMismatch(Expiries),
    /// Different types: different, whatever the contents.
    Types { source: Kind, target: Kind },
    /// The payloads differ: their contents decide; `expiry` is the
    /// disagreement on expiry, if any.
    Contents {
        source: Kind,
        target: Kind,
        expiry: Option<Expiries>,
    },
}

/// Looks at `item` against what the target holds, at wall-clock `now_ms`.
pub fn look(item: &Item, seen: &Seen, now_ms: u64) -> Look {
    let target_expiry = seen.expire_at_ms;
    let Some(theirs) = &seen.payload else {
        return missing(item, now_ms);
    };
    if target_expiry == Some(-2) {
        // Gone between the DUMP and the expiry read.
        return missing(item, now_ms);
    }
    let expiry = match target_expiry {
        Some(target) if !same_expiry(item.expire_at_ms, target) => Some(Expiries {
            source: item.expire_at_ms,
            target,
        }),
        _ => None,
    };
    if payload::body(&item.payload) == payload::body(theirs) {
        return match expiry {
            Some(e) => Look::TtlMismatch(e),
            None => Look::Same,
        };
    }
    let (source, target) = (Kind::of_payload(&item.payload), Kind::of_payload(theirs));
    let known = |k: Kind| !matches!(k, Kind::Unknown(_));
    if source != target && known(source) && known(target) {
        return Look::Types { source, target };
    }
    Look::Contents {
        source,
        target,
        expiry,
    }
}

fn missing(item: &Item, now_ms: u64) -> Look {
    let expiring =
        item.expire_at_ms != 0 && item.expire_at_ms <= now_ms.saturating_add(EXPIRY_TOLERANCE_MS);
    if expiring {
        Look::Expired
    } else {
        Look::Missing
    }
}

/// True when `source` (absolute ms, 0 = none) and `target` (absolute ms,
/// -1 = none) are the same expiry: both none, or within the tolerance.
pub fn same_expiry(source: u64, target: i64) -> bool {
    match (source, u64::try_from(target)) {
        (0, Err(_)) => true,
        (0, Ok(_)) | (_, Err(_)) => false,
        (s, Ok(t)) => s.abs_diff(t) <= EXPIRY_TOLERANCE_MS,
    }
}

/// An expiry as a person reads it, relative to `now_ms`: `none`, `in 12.3
/// s`, or `expired`.
pub fn describe_expiry(at_ms: i64, now_ms: u64) -> String {
    let Ok(at) = u64::try_from(at_ms) else {
        return "none".into();
    };
    if at == 0 {
        return "none".into();
    }
    match at.checked_sub(now_ms) {
        Some(left) => format!("in {:.1} s", left as f64 / 1000.0),
        None => "expired".into(),
    }
}

impl Expiries {
    /// `expires in 59.9 s on the source, none on the target`.
    pub fn describe(&self, now_ms: u64) -> String {
        let source = i64::try_from(self.source).unwrap_or(i64::MAX);
        format!(
            "expiry {} on the source, {} on the target",
            describe_expiry(source, now_ms),
            describe_expiry(self.target, now_ms)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn item(payload: &'static [u8], expire_at_ms: u64) -> Item {
        Item {
            key: Bytes::from_static(b"k"),
            payload: Bytes::from_static(payload),
            expire_at_ms,
            page: Default::default(),
        }
    }

    fn seen(payload: Option<&'static [u8]>, expire_at_ms: i64) -> Seen {
        Seen {
            payload: payload.map(Bytes::from_static),
            expire_at_ms: Some(expire_at_ms),
        }
    }

    const HELLO_10: &[u8] = b"\x00\x05hello\x0a\x00cr\xdfve4 \n";
    const HELLO_11: &[u8] = b"\x00\x05hello\x0b\x00\n\xadb\x05\x98\xab\xc9\x83";
    const WORLD_10: &[u8] = b"\x00\x05world\x0a\x00cr\xdfve4 \n";
    const SET_10: &[u8] = b"\x02\x01\x01a\x0a\x00cr\xdfve4 \n";
    const SET_11: &[u8] = b"\x14\x01\x01a\x0b\x00cr\xdfve4 \n";

    #[test]
    fn equal_bodies_are_equal_across_versions() {
        assert_eq!(
            look(&item(HELLO_11, 0), &seen(Some(HELLO_10), -1), NOW),
            Look::Same
        );
        let at = NOW + 60_000;
        let within = i64::try_from(at + EXPIRY_TOLERANCE_MS).unwrap();
        assert_eq!(
            look(&item(HELLO_10, at), &seen(Some(HELLO_10), within), NOW),
            Look::Same
        );
    }

    #[test]
    fn expiry_must_agree_within_a_second_or_both_be_none() {
        let at = NOW + 60_000;
        let late = i64::try_from(at + EXPIRY_TOLERANCE_MS + 1).unwrap();
        assert_eq!(
            look(&item(HELLO_10, at), &seen(Some(HELLO_10), late), NOW),
            Look::TtlMismatch(Expiries {
                source: at,
                target: late
            })
        );
        assert_eq!(
            look(&item(HELLO_10, at), &seen(Some(HELLO_10), -1), NOW),
            Look::TtlMismatch(Expiries {
                source: at,
                target: -1
            })
        );
        let lt = i64::try_from(at).unwrap();
        assert!(matches!(
            look(&item(HELLO_10, 0), &seen(Some(HELLO_10), lt), NOW),
            Look::TtlMismatch(_)
        ));
        // --no-ttl: expiry is not read, so not compared.
        let unread = Seen {
            payload: Some(Bytes::from_static(HELLO_10)),
            expire_at_ms: None,
        };
        assert_eq!(look(&item(HELLO_10, at), &unread, NOW), Look::Same);
    }

    #[test]
    fn absent_keys_are_missing_unless_expiring_anyway() {
        assert_eq!(
            look(&item(HELLO_10, 0), &seen(None, -2), NOW),
            Look::Missing
        );
        assert_eq!(
            look(&item(HELLO_10, NOW + 500), &seen(None, -2), NOW),
            Look::Expired
        );
        assert_eq!(
            look(&item(HELLO_10, NOW + 5000), &seen(None, -2), NOW),
            Look::Missing
        );
        // DUMP found it, and then it was gone.
        assert_eq!(
            look(&item(HELLO_10, 0), &seen(Some(HELLO_10), -2), NOW),
            Look::Missing
        );
    }

    #[test]
    fn different_bodies_need_the_contents_unless_the_types_differ() {
        assert_eq!(
            look(&item(HELLO_10, 0), &seen(Some(WORLD_10), -1), NOW),
            Look::Contents {
                source: Kind::String,
                target: Kind::String,
                expiry: None
            }
        );
        assert_eq!(
            look(&item(SET_11, 0), &seen(Some(SET_10), -1), NOW),
            Look::Contents {
                source: Kind::Set,
                target: Kind::Set,
                expiry: None
            }
        );
        assert_eq!(
            look(&item(HELLO_10, 0), &seen(Some(SET_10), -1), NOW),
            Look::Types {
                source: Kind::String,
                target: Kind::Set
            }
        );
    }

    #[test]
    fn expiries_read_well() {
        let e = Expiries {
            source: NOW + 59_900,
            target: -1,
        };
        assert_eq!(
            e.describe(NOW),
            "expiry in 59.9 s on the source, none on the target"
        );
        assert_eq!(
            describe_expiry(i64::try_from(NOW).unwrap() - 1, NOW),
            "expired"
        );
        assert_eq!(describe_expiry(0, NOW), "none");
    }
}
