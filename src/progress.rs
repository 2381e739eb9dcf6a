//! Counting and telling: the run's counters, the progress line, the final
//! summary and its JSON form.
//!
//! The loops only bump atomic counters; the main thread reads them to draw
//! progress, so reporting never slows the data path.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many per-key failures are printed; the rest are only counted.
pub const MAX_FAILURES_SHOWN: usize = 10;

/// Counters shared by the loops and the reporter.
#[derive(Debug, Default)]
pub struct Stats {
    /// Keys the source produced (SCAN results, or records in a dump file).
    pub scanned: AtomicU64,
    /// Keys written to the target.
    pub copied: AtomicU64,
    /// Keys kept because they already existed (`--no-replace`).
    pub skipped: AtomicU64,
    /// Keys gone (deleted or expired) between SCAN and DUMP, or expired in transit.
    pub vanished: AtomicU64,
    /// Keys the target refused.
    pub failed: AtomicU64,
    /// Payload bytes written to the target.
    pub bytes: AtomicU64,
    /// Keys compared by a verify pass (its progress).
    pub compared: AtomicU64,
    /// The progress total (source DBSIZE), 0 when unknown.
    pub total: AtomicU64,
    /// Keys whose payload was rewritten for an older target (and copied).
    pub transcoded: AtomicU64,
    /// `--live`: changed keys copied again, and deleted on the target.
    pub live_applied: AtomicU64,
    pub live_deleted: AtomicU64,
    /// `--live`: rescans of the source (a lost notification connection, a
    /// dirty set that overflowed, a flush).
    pub rescans: AtomicU64,
    /// `--live`: changed keys not yet read again, and how long the oldest
    /// has waited (ms); set by the source loop.
    pub live_pending: AtomicU64,
    pub live_lag_ms: AtomicU64,
    /// `--live` was asked for: the summary shows the live counters.
    pub live: std::sync::atomic::AtomicBool,
    failures: Mutex<Vec<String>>,
    /// Things the user should hear about now (a reconnect, a restart),
    /// printed by the main thread between progress lines.
    notices: Mutex<Vec<String>>,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a refused key and keeps its message if it is among the first few.
    pub fn fail(&self, message: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut list) = self.failures.lock() {
            if list.len() < MAX_FAILURES_SHOWN {
                list.push(message);
            }
        }
    }

    /// Queues a line for stderr; the loops never print themselves, so a
    /// notice never tears the live progress line.
    pub fn notice(&self, message: String) {
        if let Ok(mut list) = self.notices.lock() {
            list.push(message);
        }
    }

    /// The notices queued since the last call.
    pub fn take_notices(&self) -> Vec<String> {
        self.notices
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Back to zero: the copy starts over, and what was counted may be gone.
    /// The total (DBSIZE) and the notices stay.
    pub fn reset(&self) {
        for counter in [
            &self.scanned,
            &self.copied,
            &self.skipped,
            &self.vanished,
            &self.failed,
            &self.bytes,
            &self.transcoded,
            &self.live_applied,
            &self.live_deleted,
            &self.compared,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        if let Ok(mut list) = self.failures.lock() {
            list.clear();
        }
    }

    /// The kept failure messages.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A consistent-enough copy of the counters.
    pub fn snapshot(&self, elapsed: Duration) -> Summary {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Summary {
            scanned: get(&self.scanned),
            copied: get(&self.copied),
            skipped: get(&self.skipped),
            vanished: get(&self.vanished),
            failed: get(&self.failed),
            bytes: get(&self.bytes),
            transcoded: get(&self.transcoded),
            compared: get(&self.compared),
            total: get(&self.total),
            live: self.live.load(Ordering::Relaxed).then(|| LiveCounts {
                applied: get(&self.live_applied),
                deleted: get(&self.live_deleted),
                rescans: get(&self.rescans),
                pending: get(&self.live_pending),
                lag_ms: get(&self.live_lag_ms),
            }),
            seconds: elapsed.as_secs_f64(),
            interrupted: None,
            error: None,
            verify: None,
        }
    }
}

/// What live sync did (`--live`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveCounts {
    pub applied: u64,
    pub deleted: u64,
    pub rescans: u64,
    pub pending: u64,
    pub lag_ms: u64,
}

impl LiveCounts {
    /// `; live: …`, appended to the progress and summary lines.
    fn describe(&self) -> String {
        format!(
            "; live: {} changes applied, {} deleted, {} pending, lag {} ms, {} rescans",
            group(self.applied),
            group(self.deleted),
            group(self.pending),
            group(self.lag_ms),
            self.rescans
        )
    }
}

/// The outcome of a run, as the summary line and `--json` report it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub scanned: u64,
    pub copied: u64,
    pub skipped: u64,
    pub vanished: u64,
    pub failed: u64,
    pub bytes: u64,
    /// Copied keys whose payload was rewritten for an older target.
    pub transcoded: u64,
    /// Keys compared by a verify pass.
    pub compared: u64,
    pub total: u64,
    /// `--live` counters, when live sync ran.
    pub live: Option<LiveCounts>,
    pub seconds: f64,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<&'static str>,
    /// The error that ended the run, if one did.
    pub error: Option<String>,
    /// What `--verify` / `--verify-only` found, when it ran.
    pub verify: Option<crate::verify::Report>,
}

impl Summary {
    /// Keys finished (copied, skipped, vanished or failed; or compared).
    pub fn done(&self) -> u64 {
        self.copied + self.skipped + self.vanished + self.failed + self.compared
    }

    pub fn keys_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.done() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The one-line summary for stderr.
    pub fn line(&self) -> String {
        let mut line = format!(
            "rump: scanned {}, copied {}, skipped {}, vanished {}, failed {}, {} in {:.2} s ({} keys/s)",
            self.scanned,
            self.copied,
            self.skipped,
            self.vanished,
            self.failed,
            human_bytes(self.bytes),
            self.seconds,
            group(self.keys_per_sec() as u64),
        );
        if self.transcoded > 0 {
            line.push_str(&format!(", {} transcoded", group(self.transcoded)));
        }
        if let Some(live) = &self.live {
            line.push_str(&live.describe());
        }
        if let Some(signal) = self.interrupted {
            line.push_str(&format!(", interrupted by {signal}"));
        }
        line
    }

    /// The summary as one JSON object.
    pub fn json(&self) -> String {
        let error = match &self.error {
            Some(e) => json_string(e),
            None => "null".into(),
        };
        let verify = match &self.verify {
            Some(report) => format!(",{}", report.json_fields()),
            None => String::new(),
        };
        let live = match &self.live {
            Some(l) => format!(
                ",\"live_applied\":{},\"live_deleted\":{},\"rescans\":{},\"live_pending\":{},\"live_lag_ms\":{}",
                l.applied, l.deleted, l.rescans, l.pending, l.lag_ms
            ),
            None => String::new(),
        };
        format!(
            "{{\"scanned\":{},\"copied\":{},\"skipped\":{},\"vanished\":{},\"failed\":{},\"bytes\":{},\"transcoded\":{},\"seconds\":{:.3},\"keys_per_sec\":{:.1},\"interrupted\":{},\"error\":{}{live}{verify}}}",
            self.scanned,
            self.copied,
            self.skipped,
            self.vanished,
            self.failed,
            self.bytes,
            self.transcoded,
            self.seconds,
            self.keys_per_sec(),
            self.interrupted.is_some(),
            error
        )
    }
}

/// Draws progress on stderr: a live line on a terminal, a plain line every few
/// seconds otherwise, nothing when silent.
#[derive(Debug)]
pub struct Reporter {
    mode: Mode,
    last: Instant,
    drawn: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Silent,
    Live,
    Periodic,
}

/// How often a non-terminal gets a progress line.
const PERIODIC_EVERY: Duration = Duration::from_secs(5);
/// How often the live line is redrawn.
const LIVE_EVERY: Duration = Duration::from_millis(200);

impl Reporter {
    pub fn new(silent: bool) -> Reporter {
        let mode = if silent {
            Mode::Silent
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Periodic
        };
        Reporter {
            mode,
            last: Instant::now(),
            drawn: false,
        }
    }

    /// Prints notices (clearing the live line first); nothing when silent.
    pub fn notices(&mut self, notices: Vec<String>) {
        if self.mode == Mode::Silent || notices.is_empty() {
            return;
        }
        self.clear();
        let mut err = std::io::stderr().lock();
        for notice in notices {
            let _ = writeln!(err, "rump: {}", crate::secrets::redact(&notice));
        }
    }

    /// Draws progress if it is time to.
    pub fn tick(&mut self, now: &Summary) {
        let every = match self.mode {
            Mode::Silent => return,
            Mode::Live => LIVE_EVERY,
            Mode::Periodic => PERIODIC_EVERY,
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let line = progress_line(now);
        let mut err = std::io::stderr().lock();
        if self.mode == Mode::Live {
            let _ = write!(err, "\r\x1b[K{line}");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    /// Removes the live line so a message or the summary starts clean.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.drawn = false;
        }
    }
}

fn progress_line(s: &Summary) -> String {
    let rate = s.keys_per_sec();
    let mut line = format!("rump: {}", group(s.done()));
    if s.total > 0 {
        let pct = (s.done() as f64 * 100.0 / s.total as f64).min(100.0);
        line.push_str(&format!("/{} keys ({pct:.0}%)", group(s.total)));
    } else {
        line.push_str(" keys");
    }
    line.push_str(&format!(
        ", {} keys/s, {}",
        group(rate as u64),
        human_bytes(s.bytes)
    ));
    if s.total > s.done() && rate > 0.0 {
        let eta = (s.total - s.done()) as f64 / rate;
        line.push_str(&format!(", ETA {}", human_duration(eta)));
    }
    // `--live`: what the operator watches before switching over.
    if let Some(live) = &s.live {
        line.push_str(&live.describe());
    }
    line
}

/// `1234567` as `1,234,567`.
///
/// ```
/// assert_eq!(rump::progress::group(1234567), "1,234,567");
/// assert_eq!(rump::progress::group(999), "999");
/// ```
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1536` as `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn human_duration(secs: f64) -> String {
    let secs = secs.round() as u64;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(75.0), "1m15s");
    }

    #[test]
    fn json_has_every_contract_field() {
        let s = Summary {
            scanned: 5,
            copied: 3,
            skipped: 1,
            vanished: 1,
            failed: 0,
            bytes: 100,
            seconds: 2.0,
            interrupted: Some("SIGINT"),
            error: Some("target x: \"bad\"\n".into()),
            ..Summary::default()
        };
        let json = s.json();
        for field in [
            "\"scanned\":5",
            "\"copied\":3",
            "\"skipped\":1",
            "\"vanished\":1",
            "\"failed\":0",
            "\"bytes\":100",
            "\"seconds\":2.000",
            "\"keys_per_sec\":2.5",
            "\"interrupted\":true",
            "\"error\":\"target x: \\\"bad\\\"\\n\"",
        ] {
            assert!(json.contains(field), "{field} in {json}");
        }
        assert!(s.line().contains("interrupted by SIGINT"));
    }

    #[test]
    fn live_counts_show_in_progress_and_summary() {
        let s = Summary {
            total: 10,
            copied: 10,
            seconds: 1.0,
            live: Some(LiveCounts {
                applied: 1234,
                deleted: 5,
                rescans: 1,
                pending: 42,
                lag_ms: 7,
            }),
            ..Summary::default()
        };
        let said = "; live: 1,234 changes applied, 5 deleted, 42 pending, lag 7 ms, 1 rescans";
        assert!(progress_line(&s).ends_with(said), "{}", progress_line(&s));
        assert!(s.line().contains(said), "{}", s.line());
        let json = s.json();
        for field in [
            "\"live_applied\":1234",
            "\"live_deleted\":5",
            "\"rescans\":1",
            "\"live_pending\":42",
            "\"live_lag_ms\":7",
        ] {
            assert!(json.contains(field), "{field} in {json}");
        }
        assert!(!Summary::default().json().contains("live_applied"));
    }
}
