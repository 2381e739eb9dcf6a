//! Live sync (`--live`): following the source's changes through keyspace
//! notifications while the scan runs, and after it.
//!
//! Each scanned source node gets a second connection, its feed, subscribed
//! to `__keyspace@<db>__:*` before the scan starts, so no change falls
//! between the two. Every event names a key; the key is marked dirty in that
//! node's [`DirtySet`] (coalesced: a key changed a thousand times while it
//! waits is copied once), and the node's scan role reads it again (DUMP and
//! expiry) on the same connection as the scan, and hands it on in order: a
//! key that no longer exists becomes a deletion on the target. Since one
//! source connection reads and one target connection per node writes, a
//! key's copies reach the target in the order they were read, so an older
//! copy never overwrites a newer one.
//!
//! Sans-IO: [`Feed`] writes its commands into a [`Requests`] queue and takes
//! frames; the source loop owns the connection.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use resp::{Frame, Requests};

/// Most keys a node's dirty set holds. Past it, the set is dropped and the
/// node rescanned: a rescan finds every key again, at a cost bounded by the
/// keyspace rather than by the change rate. 1M keys of a typical 30 bytes
/// is about 100 MiB at worst with the set's overhead; most runs never come
/// close, since keys leave the set as fast as the source answers DUMPs.
pub const MAX_DIRTY_KEYS: usize = 1_000_000;

/// Keys changed on the source and not yet read again, oldest first, each
/// once.
#[derive(Debug, Default)]
pub struct DirtySet {
    order: VecDeque<(Bytes, Instant)>,
    members: HashSet<Bytes>,
    /// The set overflowed since the last [`DirtySet::take_overflow`].
    overflowed: bool,
}

impl DirtySet {
    /// Marks `key` changed; `false` when it was already waiting.
    pub fn mark(&mut self, key: Bytes, now: Instant) -> bool {
        if self.members.contains(&key) {
            return false;
        }
        if self.members.len() >= MAX_DIRTY_KEYS {
            self.clear();
            self.overflowed = true;
            return false;
        }
        // A copy: the key is a slice of the notification connection's read
        // buffer, and keeping it would pin a whole 64 KiB chunk per waiting
        // key, however many events in it were coalesced away.
        let key = Bytes::copy_from_slice(&key);
        self.members.insert(key.clone());
        self.order.push_back((key, now));
        true
    }

    /// The oldest waiting key, and when it was marked.
    pub fn pop(&mut self) -> Option<(Bytes, Instant)> {
        let (key, at) = self.order.pop_front()?;
        self.members.remove(&key);
        Some((key, at))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// When the oldest waiting key was marked (for the lag).
    pub fn oldest(&self) -> Option<Instant> {
        self.order.front().map(|(_, at)| *at)
    }

    pub fn clear(&mut self) {
        self.order.clear();
        self.members.clear();
    }

    /// True once after the set overflowed (and was dropped).
    pub fn take_overflow(&mut self) -> bool {
        std::mem::take(&mut self.overflowed)
    }
}

/// What a feed's reply was.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedEvent {
    /// The subscription is in place.
    Subscribed,
    /// A key changed (`event` is the notification's name: `set`, `del`,
    /// `expired`, `rename_from`, …).
    Changed { key: Bytes, event: Bytes },
    /// The answer to a `PING`: every event the server published before it
    /// took the `PING` has arrived.
    Pong,
    /// Something rump does not act on (another channel).
    Other,
}

/// The subscription of one source node's feed connection.
#[derive(Debug)]
pub struct Feed {
    /// `__keyspace@<db>__:`, the prefix every channel of this db has.
    prefix: Vec<u8>,
    subscribed: bool,
}

impl Feed {
    pub fn new(db: u32) -> Feed {
        Feed {
            prefix: format!("__keyspace@{db}__:").into_bytes(),
            subscribed: false,
        }
    }

    /// Queues the subscription; one reply owed.
    pub fn subscribe(&mut self, out: &mut Requests) -> usize {
        self.subscribed = false;
        let mut pattern = self.prefix.clone();
        pattern.push(b'*');
        out.cmd().arg(b"PSUBSCRIBE").arg(&pattern).send();
        1
    }

    /// True once the server confirmed the subscription.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// Reads one frame the feed connection received.
    pub fn on_frame(&mut self, frame: Frame) -> Result<FeedEvent, String> {
        let parts = match frame {
            Frame::Array(parts) => parts,
            Frame::Error(e) => {
                return Err(format!(
                    "PSUBSCRIBE failed: {}",
                    String::from_utf8_lossy(&e)
                ))
            }
            // RESP3 answers a subscriber's PING as any other client's.
            Frame::Simple(s) if s.eq_ignore_ascii_case(b"PONG") => return Ok(FeedEvent::Pong),
            _ => return Ok(FeedEvent::Other),
        };
        let kind = match parts.first() {
            Some(Frame::Bulk(kind)) => kind.clone(),
            _ => return Ok(FeedEvent::Other),
        };
        match &kind[..] {
            b"psubscribe" => {
                self.subscribed = true;
                Ok(FeedEvent::Subscribed)
            }
            b"pong" => Ok(FeedEvent::Pong),
            b"pmessage" => {
                let (Some(Frame::Bulk(channel)), Some(Frame::Bulk(event))) =
                    (parts.get(2), parts.get(3))
                else {
                    return Err("a malformed keyspace notification".into());
                };
                match channel.strip_prefix(&self.prefix[..]) {
                    Some(_) => Ok(FeedEvent::Changed {
                        key: channel.slice(self.prefix.len()..),
                        event: event.clone(),
                    }),
                    None => Ok(FeedEvent::Other),
                }
            }
            _ => Ok(FeedEvent::Other),
        }
    }
}

/// The event classes `--live` needs in `notify-keyspace-events`: `K`
/// (keyspace channels) and every event class that changes a key (`A` is
/// `g$lshzxet`). `m` (key misses) and `n` (new keys) are not needed: a miss
/// changes nothing, and a new key also raises its write's event.
const NEEDED: &str = "g$lshzxet";

/// The flags `notify-keyspace-events` lacks for `--live`, or `None` when it
/// has them all.
pub fn missing_event_flags(setting: &str) -> Option<String> {
    let has = |c: char| setting.contains(c) || (NEEDED.contains(c) && setting.contains('A'));
    let mut missing = String::new();
    if !setting.contains('K') {
        missing.push('K');
    }
    for c in NEEDED.chars() {
        if !has(c) {
            missing.push(c);
        }
    }
    (!missing.is_empty()).then_some(missing)
}

/// The value to set so that `setting` gains what `--live` needs, keeping
/// what it had (`E` for keyevent channels, `m`, `n`, `d` …).
pub fn with_needed_flags(setting: &str) -> String {
    // `KA` covers `K` and `g$lshzxet`; the other letters are kept as they were.
    let kept: String = setting
        .chars()
        .filter(|&c| c != 'K' && c != 'A' && !NEEDED.contains(c))
        .collect();
    format!("KA{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_changed_key_is_marked_once_until_taken() {
        let mut set = DirtySet::default();
        let t0 = Instant::now();
        assert!(set.mark(Bytes::from_static(b"a"), t0));
        assert!(set.mark(Bytes::from_static(b"b"), t0 + Duration::from_millis(1)));
        assert!(!set.mark(Bytes::from_static(b"a"), t0 + Duration::from_millis(2)));
        assert_eq!(set.len(), 2);
        assert_eq!(set.oldest(), Some(t0));
        assert_eq!(set.pop().map(|(k, _)| k), Some(Bytes::from_static(b"a")));
        // Taken: a change after that marks it again.
        assert!(set.mark(Bytes::from_static(b"a"), t0 + Duration::from_millis(3)));
        assert_eq!(set.pop().map(|(k, _)| k), Some(Bytes::from_static(b"b")));
        assert_eq!(set.pop().map(|(k, _)| k), Some(Bytes::from_static(b"a")));
        assert!(set.is_empty() && !set.take_overflow());
    }

    #[test]
    fn notifications_name_the_key_binary_safe() {
        let mut feed = Feed::new(3);
        let mut out = Requests::new();
        assert_eq!(feed.subscribe(&mut out), 1);
        let sent = String::from_utf8_lossy(&out.to_bytes()).into_owned();
        assert!(sent.contains("__keyspace@3__:*"), "{sent}");
        let ok = Frame::Array(vec![
            bulk("psubscribe"),
            bulk("__keyspace@3__:*"),
            Frame::Integer(1),
        ]);
        assert_eq!(feed.on_frame(ok), Ok(FeedEvent::Subscribed));
        assert!(feed.is_subscribed());
        let msg = Frame::Array(vec![
            bulk("pmessage"),
            bulk("__keyspace@3__:*"),
            Frame::Bulk(Bytes::from_static(b"__keyspace@3__:k:\xff:1")),
            bulk("hset"),
        ]);
        assert_eq!(
            feed.on_frame(msg),
            Ok(FeedEvent::Changed {
                key: Bytes::from_static(b"k:\xff:1"),
                event: Bytes::from_static(b"hset"),
            })
        );
        let other_db = Frame::Array(vec![
            bulk("pmessage"),
            bulk("__keyspace@3__:*"),
            bulk("__keyspace@4__:x"),
            bulk("set"),
        ]);
        assert_eq!(feed.on_frame(other_db), Ok(FeedEvent::Other));
        let pong = Frame::Array(vec![bulk("pong"), bulk("")]);
        assert_eq!(feed.on_frame(pong), Ok(FeedEvent::Pong));
        let pong3 = Frame::Simple(Bytes::from_static(b"PONG"));
        assert_eq!(feed.on_frame(pong3), Ok(FeedEvent::Pong));
        let broken = Frame::Array(vec![bulk("pmessage"), bulk("p")]);
        assert!(feed.on_frame(broken).is_err());
    }

    #[test]
    fn event_flags_needed_for_live() {
        assert_eq!(missing_event_flags("KA"), None);
        assert_eq!(missing_event_flags("AKE"), None);
        assert_eq!(missing_event_flags("Kg$lshzxet"), None);
        assert_eq!(missing_event_flags(""), Some("Kg$lshzxet".into()));
        assert_eq!(missing_event_flags("Ex"), Some("Kg$lshzet".into()));
        assert_eq!(missing_event_flags("Kgx"), Some("$lshzet".into()));
        for setting in ["", "E", "Ex", "KA", "Kgxm", "AE", "Kg$lshzxetd"] {
            let value = with_needed_flags(setting);
            assert_eq!(missing_event_flags(&value), None, "{setting} -> {value}");
            for c in setting.chars().filter(|c| !"Ag$lshzxet".contains(*c)) {
                assert!(value.contains(c), "{setting} -> {value} lost {c}");
            }
        }
    }
}
