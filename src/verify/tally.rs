//! The verify's counts and the first keys of each kind of difference, as
//! the summary line, `--json` and the closing lines print them.
//!
//! The loops bump atomic counters; the few keys shown are kept under a
//! mutex taken only when a key differs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::quote_key;
use crate::progress::{group, json_string};

/// Keys shown for each kind of difference; the rest are only counted.
pub const SHOWN_PER_KIND: usize = 5;

/// How a key differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// Absent on the target.
    Missing,
    /// Another value or another type.
    Different,
    /// Same value, another expiry.
    TtlMismatch,
}

impl Difference {
    /// The name the summary and `--json` use.
    pub fn name(self) -> &'static str {
        match self {
            Difference::Missing => "missing",
            Difference::Different => "different",
            Difference::TtlMismatch => "ttl_mismatch",
        }
    }

    fn index(self) -> usize {
        match self {
            Difference::Missing => 0,
            Difference::Different => 1,
            Difference::TtlMismatch => 2,
        }
    }
}

/// One key shown: the key quoted (binary-safe) and why it differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub kind: Difference,
    /// `quote_key` of the key.
    pub key: String,
    pub why: String,
}

/// Counters shared by the loop that compares and the main thread.
#[derive(Debug, Default)]
pub struct Tally {
    pub verified: AtomicU64,
    counts: [AtomicU64; 3],
    /// Keys gone from the source while compared, or absent on the target
    /// and about to expire on the source anyway: not differences.
    pub gone: AtomicU64,
    /// Differences found once and read again before being reported.
    pub rechecked: AtomicU64,
    shown: Mutex<Vec<Shown>>,
}

impl Tally {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` keys equal on both ends.
    pub fn verified(&self, n: u64) {
        self.verified.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a key that differs, keeping it among the first shown.
    pub fn differs(&self, kind: Difference, key: &[u8], why: String) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut shown) = self.shown.lock() {
            if shown.iter().filter(|s| s.kind == kind).count() < SHOWN_PER_KIND {
                shown.push(Shown {
                    kind,
                    key: quote_key(key),
                    why,
                });
            }
        }
    }

    /// Keys counted as differing in `kind`.
    pub fn count(&self, kind: Difference) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Back to zero: the source restarted, so the comparison starts over.
    pub fn reset(&self) {
        for c in [&self.verified, &self.gone, &self.rechecked]
            .into_iter()
            .chain(&self.counts)
        {
            c.store(0, Ordering::Relaxed);
        }
        if let Ok(mut shown) = self.shown.lock() {
            shown.clear();
        }
    }

    /// The result so far, for the summary.
    pub fn report(&self, seconds: f64) -> Report {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Report {
            verified: get(&self.verified),
            missing: self.count(Difference::Missing),
            different: self.count(Difference::Different),
            ttl_mismatch: self.count(Difference::TtlMismatch),
            gone: get(&self.gone),
            rechecked: get(&self.rechecked),
            seconds,
            shown: self.shown.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }
}

/// What a verify found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub verified: u64,
    pub missing: u64,
    pub different: u64,
    pub ttl_mismatch: u64,
    /// Gone from the source while compared, or expiring anyway (not counted
    /// as differences).
    pub gone: u64,
    /// Differences read a second time before being reported.
    pub rechecked: u64,
    pub seconds: f64,
    /// The first keys of each kind of difference.
    pub shown: Vec<Shown>,
}

impl Report {
    /// Keys that differ in any way.
    pub fn differing(&self) -> u64 {
        self.missing + self.different + self.ttl_mismatch
    }

    /// Keys compared.
    pub fn compared(&self) -> u64 {
        self.verified + self.differing() + self.gone
    }

    pub fn keys_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.compared() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The one-line verify summary for stderr.
    pub fn line(&self) -> String {
        format!(
            "rump: verify: {} keys compared: verified {}, missing {}, different {}, \
             ttl_mismatch {} in {:.2} s ({} keys/s)",
            group(self.compared()),
            group(self.verified),
            group(self.missing),
            group(self.different),
            group(self.ttl_mismatch),
            self.seconds,
            group(self.keys_per_sec() as u64)
        )
    }

    /// One line per key shown, `missing "user:1"` and why.
    pub fn shown_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for kind in [
            Difference::Missing,
            Difference::Different,
            Difference::TtlMismatch,
        ] {
            let total = match kind {
                Difference::Missing => self.missing,
                Difference::Different => self.different,
                Difference::TtlMismatch => self.ttl_mismatch,
            };
            let shown: Vec<&Shown> = self.shown.iter().filter(|s| s.kind == kind).collect();
            for s in &shown {
                if s.why.is_empty() {
                    lines.push(format!("verify: {} {}", kind.name(), s.key));
                } else {
                    lines.push(format!("verify: {} {}: {}", kind.name(), s.key, s.why));
                }
            }
            if total > shown.len() as u64 {
                lines.push(format!(
                    "verify: … and {} more {}",
                    group(total - shown.len() as u64),
                    kind.name()
                ));
            }
        }
        lines
    }

    /// The verify's fields of the `--json` summary (without braces).
    pub fn json_fields(&self) -> String {
        let shown: Vec<String> = self
            .shown
            .iter()
            .map(|s| {
                // The key as quote_key writes it, without its quotes.
                let key = s.key.strip_prefix('"').unwrap_or(&s.key);
                let key = key.rsplit_once('"').map_or(key, |(k, _)| k);
                format!(
                    "{{\"kind\":\"{}\",\"key\":{},\"why\":{}}}",
                    s.kind.name(),
                    json_string(key),
                    json_string(&s.why)
                )
            })
            .collect();
        format!(
            "\"verified\":{},\"missing\":{},\"different\":{},\"ttl_mismatch\":{},\
             \"verify_gone\":{},\"verify_rechecked\":{},\"verify_seconds\":{:.3},\
             \"verify_keys_per_sec\":{:.1},\"differences\":[{}]",
            self.verified,
            self.missing,
            self.different,
            self.ttl_mismatch,
            self.gone,
            self.rechecked,
            self.seconds,
            self.keys_per_sec(),
            shown.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_the_first_keys_of_each_kind() {
        let t = Tally::default();
        t.verified(7);
        for i in 0..8u8 {
            t.differs(Difference::Missing, &[b'm', i], String::new());
        }
        t.differs(
            Difference::Different,
            b"a\"b",
            "type set on the source".into(),
        );
        t.differs(Difference::TtlMismatch, b"t", "expiry none".into());
        let r = t.report(2.0);
        assert_eq!(
            (r.verified, r.missing, r.different, r.ttl_mismatch),
            (7, 8, 1, 1)
        );
        assert_eq!(r.differing(), 10);
        assert_eq!(r.keys_per_sec(), 8.5);
        let lines = r.shown_lines();
        assert_eq!(lines[0], "verify: missing \"m\\x00\"");
        assert_eq!(lines[SHOWN_PER_KIND], "verify: … and 3 more missing");
        assert!(lines.contains(&"verify: different \"a\\\"b\": type set on the source".into()));
        assert!(r
            .line()
            .contains("verified 7, missing 8, different 1, ttl_mismatch 1"));
        let json = r.json_fields();
        assert!(json.contains("\"missing\":8"), "{json}");
        assert!(
            json.contains("{\"kind\":\"missing\",\"key\":\"m\\\\x00\",\"why\":\"\"}"),
            "{json}"
        );
        assert!(json.contains("\"key\":\"a\\\\\\\"b\""), "{json}");
        t.reset();
        assert_eq!(
            t.report(1.0),
            Report {
                seconds: 1.0,
                ..Report::default()
            }
        );
    }
}
