//! The target loop: turns items into pipelined `RESTORE` commands and accounts
//! for every reply.
//!
//! A `RESTORE` is written as a small header plus the payload `Bytes` itself
//! (a slice of the source's read buffer) through vectored writes, so a payload
//! is never copied on its way out (below `resp::DEFAULT_INLINE_MAX` bytes it is
//! appended to the header instead, which is cheaper than another iovec).
//! Replies come back in order and are matched to a queue of the keys in flight.
//!
//! Error replies are sorted: those that doom every later write (out of memory,
//! read-only, incompatible payload version, lost auth, cluster redirects) end
//! the run at once with the server's message and a hint; the rest fail only
//! their key, which is counted and reported.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token};
use resp::Frame;

use crate::conn::Conn;
use crate::control::Control;
use crate::error::{quote_key, Error, Role};
use crate::pipe::{BatchReceiver, Item, RecvError};
use crate::progress::Stats;
use crate::session::{text, Session};
use crate::source::{now_ms, poll_once};

/// The target connection's token.
pub const TARGET: Token = Token(0);
/// The target loop's waker: a batch arrived, the source finished, or stop.
pub const TARGET_WAKER: Token = Token(1);

/// Most bytes queued for the socket at once; with the pipeline window this
/// bounds what the target side holds, whatever the value sizes.
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// After a stop, how long in-flight writes get to be acknowledged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(100);

/// What the target loop is asked to do.
#[derive(Clone, Debug)]
pub struct TargetOptions {
    /// Most commands in flight.
    pub pipeline: u32,
    /// `RESTORE … REPLACE` (default); without it existing keys are skipped.
    pub replace: bool,
    /// The target understands `RESTORE … ABSTTL`.
    pub absttl: bool,
}

/// A RESTORE waiting for its reply.
#[derive(Debug)]
struct InFlight {
    key: Bytes,
    payload_len: u64,
}

/// The target side of a migration into a server.
#[derive(Debug)]
pub struct ServerTarget {
    conn: Conn,
    poll: Poll,
    opts: TargetOptions,
    rx: BatchReceiver,
    /// The batch being encoded and its byte budget, released when done.
    current: Option<(std::vec::IntoIter<Item>, usize)>,
    inflight: VecDeque<InFlight>,
    source_done: bool,
    stats: Arc<Stats>,
    control: Arc<Control>,
}

impl ServerTarget {
    /// Takes over an opened session; `poll` must own the waker the source uses
    /// to wake this loop (token [`TARGET_WAKER`]).
    pub fn new(
        session: Session,
        poll: Poll,
        opts: TargetOptions,
        rx: BatchReceiver,
        stats: Arc<Stats>,
        control: Arc<Control>,
    ) -> Result<ServerTarget, Error> {
        let conn = Conn::from_session(session, poll.registry(), TARGET)?;
        Ok(ServerTarget {
            conn,
            poll,
            opts,
            rx,
            current: None,
            inflight: VecDeque::new(),
            source_done: false,
            stats,
            control,
        })
    }

    /// Runs until the source is done and every write is acknowledged, or a
    /// stop (then in-flight writes get five seconds to finish).
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(64);
        let mut stopped_at: Option<Instant> = None;
        loop {
            if stopped_at.is_none() && self.control.stopped() {
                stopped_at = Some(Instant::now());
                // Items received but not yet encoded are dropped.
                self.release_current();
            }
            if stopped_at.is_none() {
                self.fill();
            }
            self.conn.flush()?;
            while let Some(frame) = self.conn.next_frame()? {
                self.on_reply(frame)?;
            }
            if stopped_at.is_none() {
                self.fill();
                self.conn.flush()?;
            }

            let idle = self.inflight.is_empty() && self.conn.out.is_empty();
            if idle && (stopped_at.is_some() || (self.source_done && self.current.is_none())) {
                self.conn.shutdown_write();
                return Ok(());
            }
            if stopped_at.is_some_and(|t| t.elapsed() > DRAIN_TIMEOUT) {
                return Ok(());
            }

            let can_fill = stopped_at.is_none()
                && self.inflight.len() < self.opts.pipeline as usize
                && self.current.is_some();
            let busy = self.conn.may_read() || self.conn.may_write() || can_fill;
            let timeout = if busy { Duration::ZERO } else { IDLE_POLL };
            poll_once(&mut self.poll, &mut events, timeout)?;
            for event in events.iter() {
                if event.token() == TARGET {
                    self.conn.on_event(event);
                }
            }
        }
    }

    /// Encodes items into RESTOREs while the windows allow.
    fn fill(&mut self) {
        let window = self.opts.pipeline as usize;
        let mut now = None;
        while self.inflight.len() < window && self.conn.out.len() < MAX_QUEUED_BYTES {
            let item = match &mut self.current {
                Some((items, _)) => match items.next() {
                    Some(item) => item,
                    None => {
                        self.release_current();
                        continue;
                    }
                },
                None => {
                    if self.source_done {
                        break;
                    }
                    match self.rx.try_recv() {
                        Ok(batch) => {
                            self.current = Some((batch.items.into_iter(), batch.bytes));
                            continue;
                        }
                        Err(RecvError::Empty) => break,
                        // An abandoned stream still ends here: every key the
                        // source sent is written; its error is its own.
                        Err(RecvError::Done | RecvError::Abandoned) => {
                            self.source_done = true;
                            break;
                        }
                    }
                }
            };
            let now = *now.get_or_insert_with(now_ms);
            self.restore(item, now);
        }
    }

    /// Queues one `RESTORE`, or counts the key as vanished if it has expired.
    fn restore(&mut self, item: Item, now: u64) {
        let expires = item.expire_at_ms != 0;
        if expires && item.expire_at_ms <= now {
            Stats::add(&self.stats.vanished, 1);
            return;
        }
        let absttl = expires && self.opts.absttl;
        let ttl = match (expires, absttl) {
            (false, _) => 0,
            (true, true) => item.expire_at_ms,
            (true, false) => item.expire_at_ms - now,
        };
        let argc = 4 + usize::from(self.opts.replace) + usize::from(absttl);
        let out = &mut self.conn.out;
        out.start(argc);
        out.arg(b"RESTORE");
        out.arg(&item.key);
        out.arg_int(ttl as i64);
        let payload_len = item.payload.len() as u64;
        out.arg_shared(item.payload);
        if self.opts.replace {
            out.arg(b"REPLACE");
        }
        if absttl {
            out.arg(b"ABSTTL");
        }
        self.inflight.push_back(InFlight {
            key: item.key,
            payload_len,
        });
    }

    fn release_current(&mut self) {
        if let Some((_, bytes)) = self.current.take() {
            self.rx.release(bytes);
        }
    }

    fn on_reply(&mut self, frame: Frame) -> Result<(), Error> {
        let Some(done) = self.inflight.pop_front() else {
            return Err(Error::Protocol {
                role: Role::Target,
                endpoint: self.conn.name().to_string(),
                detail: "a reply arrived for no command".into(),
            });
        };
        match frame {
            Frame::Simple(_) => {
                Stats::add(&self.stats.copied, 1);
                Stats::add(&self.stats.bytes, done.payload_len);
                Ok(())
            }
            Frame::Error(e) => self.on_error(&done.key, &e),
            other => Err(Error::Protocol {
                role: Role::Target,
                endpoint: self.conn.name().to_string(),
                detail: format!("unexpected reply to RESTORE: {other:?}"),
            }),
        }
    }

    /// Sorts a RESTORE error: a skipped key, a failed key, or the end of the run.
    fn on_error(&self, key: &[u8], message: &[u8]) -> Result<(), Error> {
        let name = self.conn.name().to_string();
        let server = text(message);
        match classify(message) {
            Refusal::Exists if !self.opts.replace => {
                Stats::add(&self.stats.skipped, 1);
                Ok(())
            }
            Refusal::Exists | Refusal::Key => {
                self.stats.fail(format!(
                    "target {name}: RESTORE {} failed: {server}",
                    quote_key(key)
                ));
                Ok(())
            }
            Refusal::Fatal(hint) => Err(Error::Server {
                role: Role::Target,
                endpoint: name,
                command: format!("RESTORE {}", quote_key(key)),
                message: if hint.is_empty() {
                    server
                } else {
                    format!("{server} ({hint})")
                },
            }),
        }
    }
}

/// What a RESTORE error reply means for the run.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// BUSYKEY: the key exists and REPLACE was not sent.
    Exists,
    /// Only this key failed.
    Key,
    /// Every later write would fail too; the hint says what to do.
    Fatal(&'static str),
}

/// Sorts a RESTORE error reply by its error code.
pub fn classify(message: &[u8]) -> Refusal {
    let code = message.split(|&b| b == b' ').next().unwrap_or_default();
    match code {
        b"BUSYKEY" => Refusal::Exists,
        b"OOM" => Refusal::Fatal(
            "the target is out of memory: raise maxmemory or free space, then run again",
        ),
        b"READONLY" => {
            Refusal::Fatal("the target is a read-only replica: point -to at the primary")
        }
        // NOPERM for one key (an ACL key pattern) fails that key; NOPERM for
        // the command itself dooms every write.
        b"NOPERM" if contains(message, b"access one of the keys") => Refusal::Key,
        b"NOAUTH" | b"NOPERM" | b"WRONGPASS" => {
            Refusal::Fatal("the target user may not RESTORE: check its ACL")
        }
        b"MOVED" | b"ASK" | b"CLUSTERDOWN" | b"CROSSSLOT" => {
            Refusal::Fatal("the target is a cluster, which this build does not support yet")
        }
        b"LOADING" | b"MASTERDOWN" | b"BUSY" => {
            Refusal::Fatal("the target is not accepting writes now: try again later")
        }
        _ if contains(message, b"payload version or checksum are wrong") => Refusal::Fatal(
            "the source writes a newer DUMP format than the target reads, \
             e.g. Valkey 8 or Redis 7.2+ to Redis 7.0: use a target at least as new as the source",
        ),
        _ => Refusal::Key,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_errors_are_sorted_by_code() {
        assert_eq!(
            classify(b"BUSYKEY Target key name already exists."),
            Refusal::Exists
        );
        assert!(matches!(
            classify(b"OOM command not allowed when used memory > 'maxmemory'."),
            Refusal::Fatal(h) if h.contains("out of memory")
        ));
        assert!(matches!(
            classify(b"ERR DUMP payload version or checksum are wrong"),
            Refusal::Fatal(h) if h.contains("newer DUMP format")
        ));
        assert!(matches!(
            classify(b"READONLY You can't write against a read only replica."),
            Refusal::Fatal(_)
        ));
        assert!(matches!(
            classify(b"MOVED 3999 127.0.0.1:6381"),
            Refusal::Fatal(_)
        ));
        assert_eq!(classify(b"ERR Bad data format"), Refusal::Key);
        assert_eq!(
            classify(
                b"NOPERM this user has no permissions to access one of the keys used as arguments"
            ),
            Refusal::Key
        );
        assert!(matches!(
            classify(b"NOPERM this user has no permissions to run the 'restore' command"),
            Refusal::Fatal(_)
        ));
        assert_eq!(classify(b""), Refusal::Key);
    }
}
