//! Deciding about each key: the first look's verdict counted at once when
//! it is final, contents compared in batches through [`Canonical`] when the
//! payloads differ, and every difference read once more, after a short
//! delay, before it is reported (a key written on the source while it was
//! compared would otherwise be reported as different).
//!
//! The re-check reads the key again on both ends: `DUMP` and the expiry,
//! then the first look and the contents as before, and what it finds is
//! final. It is skipped for a dump-file source (a file does not change) and
//! past [`RECHECK_MAX`] differences (that many are no race).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp::Frame;

use crate::engine::clock::now_ms;
use crate::engine::item::Item;
use crate::error::{quote_key, Error, Role};
use crate::net::handshake::text;
use crate::verify::canonical::{Canonical, Contents, Suspect};
use crate::verify::compare::{look, Expiries, Look, Seen};
use crate::verify::ends::Ends;
use crate::verify::side::{arg, Request, Side};
use crate::verify::tally::{Difference, Tally};

/// Keys whose contents are compared together.
pub const BATCH_KEYS: usize = 256;
/// Payload bytes held for a batch of contents at most.
pub const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most differences re-checked; the ones past it are reported as found.
pub const RECHECK_MAX: usize = 10_000;
/// How long after a difference was found it is read again.
pub const RECHECK_DELAY: Duration = Duration::from_millis(500);
/// Keys re-read in one round.
const RECHECK_ROUND: usize = 1000;

/// A first look's difference, to be read again before it is reported.
#[derive(Debug)]
struct Doubt {
    key: Bytes,
}

/// Counts keys as they are compared.
pub struct Judge {
    tally: Arc<Tally>,
    canonical: Box<dyn Canonical>,
    ends: Ends,
    /// Keys whose contents are still to compare, with their expiry verdict.
    backlog: Vec<(Suspect, Option<Expiries>)>,
    backlog_bytes: usize,
    doubts: Vec<Doubt>,
    last_doubt: Option<Instant>,
    /// Differences are re-checked (a server source, first pass).
    recheck: bool,
    /// Expiry is read and compared (not `--no-ttl`).
    compare_ttl: bool,
    signal: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("backlog", &self.backlog.len())
            .field("doubts", &self.doubts.len())
            .finish_non_exhaustive()
    }
}

impl Judge {
    /// A judge counting into `tally`; `recheck` for a server source.
    pub fn new(
        tally: Arc<Tally>,
        canonical: Box<dyn Canonical>,
        ends: Ends,
        recheck: bool,
        compare_ttl: bool,
        signal: Arc<AtomicUsize>,
    ) -> Judge {
        Judge {
            tally,
            canonical,
            ends,
            backlog: Vec::new(),
            backlog_bytes: 0,
            doubts: Vec::new(),
            last_doubt: None,
            recheck,
            compare_ttl,
            signal,
        }
    }

    /// The counters this judge counts into.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Takes the first look at a key: the source's `item` against what
    /// the target holds.
    pub fn take(&mut self, item: Item, seen: Seen, now_ms: u64) -> Result<(), Error> {
        match look(&item, &seen, now_ms) {
            Look::Same => self.tally.verified(1),
            Look::Expired => Tally::add(&self.tally.gone, 1),
            Look::Missing => self.differs(item.key, Difference::Missing, String::new()),
            Look::TtlMismatch(e) => {
                self.differs(item.key, Difference::TtlMismatch, e.describe(now_ms));
            }
            Look::Types { source, target } => self.differs(
                item.key,
                Difference::Different,
                format!(
                    "type {} on the source, {} on the target",
                    source.name(),
                    target.name()
                ),
            ),
            Look::Contents { expiry, .. } => {
                let target = seen.payload.unwrap_or_default();
                self.backlog_bytes += item.payload.len() + target.len();
                let suspect = Suspect {
                    key: item.key,
                    source: item.payload,
                    target,
                };
                self.backlog.push((suspect, expiry));
                if self.backlog.len() >= BATCH_KEYS || self.backlog_bytes >= BATCH_BYTES {
                    self.resolve()?;
                }
            }
        }
        Ok(())
    }

    /// A difference: held for the re-check, or counted.
    fn differs(&mut self, key: Bytes, kind: Difference, why: String) {
        if self.recheck && self.doubts.len() < RECHECK_MAX {
            self.doubts.push(Doubt { key });
            self.last_doubt = Some(Instant::now());
        } else {
            self.tally.differs(kind, &key, why);
        }
    }

    /// Compares the contents of the keys waiting for it.
    pub fn resolve(&mut self) -> Result<(), Error> {
        if self.backlog.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.backlog);
        self.backlog_bytes = 0;
        let suspects: Vec<Suspect> = batch.iter().map(|(s, _)| s.clone()).collect();
        let verdicts = self.canonical.compare(&suspects, &mut self.ends)?;
        let now = now_ms();
        for ((suspect, expiry), verdict) in batch.into_iter().zip(verdicts) {
            match (verdict, expiry) {
                (Contents::Same, None) => self.tally.verified(1),
                (Contents::Same, Some(e)) => {
                    self.differs(suspect.key, Difference::TtlMismatch, e.describe(now));
                }
                (Contents::Differ(why), _) => self.differs(suspect.key, Difference::Different, why),
                (Contents::SourceGone, _) => Tally::add(&self.tally.gone, 1),
                (Contents::TargetGone, _) => {
                    self.differs(suspect.key, Difference::Missing, String::new());
                }
            }
        }
        Ok(())
    }

    /// Everything is compared once: compares what waits, then reads every
    /// difference again (after [`RECHECK_DELAY`]) and counts what it finds.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.resolve()?;
        let doubts = std::mem::take(&mut self.doubts);
        if doubts.is_empty() {
            return Ok(());
        }
        // What the re-check finds is final.
        self.recheck = false;
        if let Some(at) = self.last_doubt {
            let wait = RECHECK_DELAY.saturating_sub(at.elapsed());
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                if self.signal.load(Ordering::SeqCst) != 0 {
                    return Err(Error::Aborted("interrupted".into()));
                }
                std::thread::sleep(Duration::from_millis(20).min(wait));
            }
        }
        for round in doubts.chunks(RECHECK_ROUND) {
            let keys: Vec<Bytes> = round.iter().map(|d| d.key.clone()).collect();
            self.recheck_round(&keys)?;
            Tally::add(&self.tally.rechecked, keys.len() as u64);
        }
        self.resolve()
    }

    /// Reads `keys` again on both ends and takes a fresh look at each.
    fn recheck_round(&mut self, keys: &[Bytes]) -> Result<(), Error> {
        let compare_ttl = self.compare_ttl;
        let (ours, theirs) = self.ends.on_both(|_, side| {
            let expiry = expiry_command(side);
            let requests: Vec<Request> = keys
                .iter()
                .map(|k| {
                    let mut commands = vec![vec![arg(b"DUMP"), k.clone()]];
                    if compare_ttl {
                        commands.push(vec![arg(expiry), k.clone()]);
                    }
                    Request::key(k, commands)
                })
                .collect();
            let replies = side.round(&requests)?;
            let now = now_ms();
            replies
                .into_iter()
                .zip(keys)
                .map(|(frames, key)| read_back(side, key, frames, expiry, now))
                .collect::<Result<Vec<Seen>, Error>>()
        })?;
        let Some(ours) = ours else {
            return Err(Error::Setup(std::io::Error::other(
                "a re-check needs a server source",
            )));
        };
        let now = now_ms();
        for ((key, source), target) in keys.iter().zip(ours).zip(theirs) {
            let Some(payload) = source.payload else {
                // Gone from the source since: nothing to compare.
                Tally::add(&self.tally.gone, 1);
                continue;
            };
            let expire_at_ms = source
                .expire_at_ms
                .map_or(0, |n| u64::try_from(n).unwrap_or(0));
            let item = Item {
                key: key.clone(),
                payload,
                expire_at_ms,
                page: Default::default(),
            };
            self.take(item, target, now)?;
        }
        Ok(())
    }

    /// The comparison starts over (the source restarted): nothing found so
    /// far counts.
    pub fn reset(&mut self) {
        self.tally.reset();
        self.backlog.clear();
        self.backlog_bytes = 0;
        self.doubts.clear();
        self.last_doubt = None;
    }
}

/// `PEXPIRETIME` where the side's server has it, else `PTTL`.
fn expiry_command(side: &Side) -> &'static [u8] {
    let absolute = side.nodes().iter().all(|n| n.info.has_pexpiretime());
    if absolute {
        b"PEXPIRETIME"
    } else {
        b"PTTL"
    }
}

/// A key's `DUMP` and expiry replies as a [`Seen`]; relative expiry made
/// absolute at `now`.
fn read_back(
    side: &Side,
    key: &[u8],
    frames: Vec<Frame>,
    expiry: &[u8],
    now: u64,
) -> Result<Seen, Error> {
    let mut frames = frames.into_iter();
    let refused = |command: &str, frame: Frame| {
        let node = side.nodes().first();
        Error::Server {
            role: node.map_or(Role::Source, |n| n.conn.role()),
            endpoint: node.map_or_else(String::new, |n| n.conn.name().to_string()),
            command: format!("{command} {}", quote_key(key)),
            message: match frame {
                Frame::Error(e) => text(&e),
                other => format!("unexpected reply {other:?}"),
            },
        }
    };
    let payload = match frames.next() {
        Some(Frame::Bulk(p)) => Some(p),
        Some(Frame::Null) | None => None,
        Some(other) => return Err(refused("DUMP", other)),
    };
    let expire_at_ms = match frames.next() {
        None => None,
        Some(Frame::Integer(n)) if n >= 0 && expiry == b"PTTL" => {
            Some(i64::try_from(now).unwrap_or(i64::MAX).saturating_add(n))
        }
        Some(Frame::Integer(n)) => Some(n),
        Some(other) => return Err(refused(&text(expiry), other)),
    };
    Ok(Seen {
        payload,
        expire_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use crate::config::Config;

    /// A stand-in for payload decoding: what the lead's `rdb`
    /// implementation will look like from here (no reads, one verdict per
    /// suspect).
    struct Scripted(Vec<Contents>);

    impl Canonical for Scripted {
        fn compare(&mut self, suspects: &[Suspect], _: &mut Ends) -> Result<Vec<Contents>, Error> {
            Ok(self.0.drain(..suspects.len()).collect())
        }
    }

    fn judge(verdicts: Vec<Contents>) -> (Judge, Arc<Tally>) {
        let args = Args {
            from: Some("redis://127.0.0.1:1".into()),
            to: Some("redis://127.0.0.1:2".into()),
            ..Args::default()
        };
        let config = Arc::new(Config::from_args(args, |_| None).unwrap());
        let signal = Arc::new(AtomicUsize::new(0));
        let tally = Arc::new(Tally::default());
        let ends = Ends::new(config, Arc::clone(&signal));
        let judge = Judge::new(
            Arc::clone(&tally),
            Box::new(Scripted(verdicts)),
            ends,
            false,
            true,
            signal,
        );
        (judge, tally)
    }

    fn item(key: &'static str, payload: &'static [u8], expire_at_ms: u64) -> Item {
        Item {
            key: Bytes::from_static(key.as_bytes()),
            payload: Bytes::from_static(payload),
            expire_at_ms,
            page: Default::default(),
        }
    }

    fn seen(payload: &'static [u8], expire_at_ms: i64) -> Seen {
        Seen {
            payload: Some(Bytes::from_static(payload)),
            expire_at_ms: Some(expire_at_ms),
        }
    }

    const NOW: u64 = 1_700_000_000_000;
    // Two sets whose payloads differ (type 2 and type 20, other bytes).
    const SET_A: &[u8] = b"\x02\x02\x01a\x01b\x0a\x00........";
    const SET_B: &[u8] = b"\x14\x02\x01b\x01a\x0b\x00........";

    #[test]
    fn contents_verdicts_are_counted_with_their_expiry() {
        let (mut judge, tally) = judge(vec![
            Contents::Same,
            Contents::Same,
            Contents::Differ("set members differ".into()),
            Contents::SourceGone,
            Contents::TargetGone,
        ]);
        let later = i64::try_from(NOW + 60_000).unwrap();
        judge
            .take(item("same", SET_A, 0), seen(SET_B, -1), NOW)
            .unwrap();
        judge
            .take(item("ttl", SET_A, 0), seen(SET_B, later), NOW)
            .unwrap();
        judge
            .take(item("diff", SET_A, 0), seen(SET_B, -1), NOW)
            .unwrap();
        judge
            .take(item("gone", SET_A, 0), seen(SET_B, -1), NOW)
            .unwrap();
        judge
            .take(item("lost", SET_A, 0), seen(SET_B, -1), NOW)
            .unwrap();
        // Equal bodies need no contents at all.
        judge
            .take(item("bytes", SET_A, 0), seen(SET_A, -1), NOW)
            .unwrap();
        assert_eq!(
            tally.report(1.0).verified,
            1,
            "only the byte-equal one so far"
        );
        judge.finish().unwrap();
        let r = tally.report(1.0);
        assert_eq!(
            (r.verified, r.ttl_mismatch, r.different, r.gone, r.missing),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(r.rechecked, 0, "no re-check without a server source");
        let why: Vec<&str> = r.shown.iter().map(|s| s.why.as_str()).collect();
        assert!(why.contains(&"set members differ"), "{why:?}");
    }

    #[test]
    fn a_full_batch_is_compared_at_once() {
        let (mut judge, tally) = judge(vec![Contents::Same; BATCH_KEYS]);
        for _ in 0..BATCH_KEYS {
            judge
                .take(item("k", SET_A, 0), seen(SET_B, -1), NOW)
                .unwrap();
        }
        assert_eq!(tally.report(1.0).verified, BATCH_KEYS as u64);
    }
}
