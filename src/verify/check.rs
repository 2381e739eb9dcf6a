//! The check role: what one target connection does in a verify. It reads
//! each key the source produced with `DUMP` and an expiry read, pipelined,
//! and hands back what the target holds next to the source's item, for the
//! comparison. Sans-IO, like the copy's roles: commands go into a
//! [`Requests`] queue, replies come in as [`Incoming`] frames.
//!
//! Every item stays here until both of its replies are in: a lost
//! connection hands the unanswered ones back ([`CheckRole::take_in_flight`])
//! to be read again. Only `DUMP`, `PEXPIRETIME`/`PTTL` and (for a key whose
//! slot is being migrated) `ASKING` are sent.

use std::collections::VecDeque;

use bytes::Bytes;
use resp::{Frame, Requests};

use crate::cluster::redirect::{parse_redirect, Redirect};
use crate::engine::item::Item;
use crate::engine::scan::ExpiryRead;
use crate::error::{quote_key, Error, Role};
use crate::net::handshake::text;
use crate::net::{Incoming, ServerInfo};
use crate::verify::compare::Seen;

/// Payload bytes the target may owe us at once, estimated from recent
/// payload sizes (the scan role's window, for the same reason).
const INFLIGHT_BYTES: usize = 8 * 1024 * 1024;

/// What became of an item the target answered for.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// What the target holds for the key.
    Seen(Item, Seen),
    /// The key's slot is served (`MOVED`) or being imported (`ASK`)
    /// elsewhere: read it there.
    Redirected(Item, Redirect),
    /// The target's value is larger than rump reads (its length).
    TooLarge(Item, u64),
}

/// The target's `DUMP` reply, waiting for its expiry read.
#[derive(Debug)]
enum Dumped {
    Value(Bytes),
    Missing,
    TooLarge(u64),
    Redirected(Redirect),
}

/// A reply to come.
#[derive(Debug)]
enum Expect {
    /// The `+OK` of an `ASKING`.
    Asking,
    Dump,
    Expiry,
}

/// The reads of one target connection.
#[derive(Debug)]
pub struct CheckRole {
    name: String,
    expiry: ExpiryRead,
    /// Most items in flight.
    pipeline: usize,
    expect: VecDeque<Expect>,
    /// Items in flight, oldest first, with their DUMP reply once it came.
    items: VecDeque<(Item, Option<Dumped>)>,
    avg_payload: usize,
}

impl CheckRole {
    /// Reads on the target `name`; `compare_ttl` is false with `--no-ttl`
    /// (expiry is then neither read nor compared).
    pub fn new(name: &str, pipeline: u32, compare_ttl: bool, info: &ServerInfo) -> CheckRole {
        CheckRole {
            name: name.to_string(),
            expiry: expiry_read(compare_ttl, info),
            pipeline: (pipeline as usize / 2).max(1),
            expect: VecDeque::new(),
            items: VecDeque::new(),
            avg_payload: INFLIGHT_BYTES / 16,
        }
    }

    /// The server behind the connection may have changed (a restart into
    /// another version): read expiry the way it now supports.
    pub fn update_server(&mut self, info: &ServerInfo) {
        if self.expiry != ExpiryRead::Skip {
            self.expiry = expiry_read(true, info);
        }
    }

    /// True while another item may go out.
    pub fn has_room(&self) -> bool {
        let by_bytes = (INFLIGHT_BYTES / self.avg_payload.max(1)).max(1);
        self.items.len() < self.pipeline.min(by_bytes)
    }

    /// Items not yet answered.
    pub fn in_flight(&self) -> usize {
        self.items.len()
    }

    /// Queues the reads of `item` (after `ASKING` when `asking`); returns
    /// the commands queued.
    pub fn send(&mut self, item: Item, asking: bool, out: &mut Requests) -> usize {
        let mut queued = 0;
        if asking {
            out.cmd().arg(b"ASKING").send();
            self.expect.push_back(Expect::Asking);
            queued += 1;
        }
        out.cmd().arg(b"DUMP").arg(&item.key).send();
        self.expect.push_back(Expect::Dump);
        queued += 1;
        if self.expiry != ExpiryRead::Skip {
            if asking {
                out.cmd().arg(b"ASKING").send();
                self.expect.push_back(Expect::Asking);
                queued += 1;
            }
            let command: &[u8] = match self.expiry {
                ExpiryRead::Absolute => b"PEXPIRETIME",
                _ => b"PTTL",
            };
            out.cmd().arg(command).arg(&item.key).send();
            self.expect.push_back(Expect::Expiry);
            queued += 1;
        }
        self.items.push_back((item, None));
        queued
    }

    /// Takes one reply, read at wall-clock `now_ms`; an item is handed back
    /// once all its replies are in.
    pub fn on_reply(&mut self, incoming: Incoming, now_ms: u64) -> Result<Option<Checked>, Error> {
        let expect = self
            .expect
            .pop_front()
            .ok_or_else(|| self.protocol("a reply arrived for no command".into()))?;
        match expect {
            Expect::Asking => Ok(None),
            Expect::Dump => {
                let dumped = match incoming {
                    Incoming::TooLarge(len) => Dumped::TooLarge(len),
                    Incoming::Frame(Frame::Bulk(payload)) => Dumped::Value(payload),
                    Incoming::Frame(Frame::Null) => Dumped::Missing,
                    Incoming::Frame(frame) => match redirect_of(&frame) {
                        Some(redirect) => Dumped::Redirected(redirect),
                        None => return Err(self.unexpected("DUMP", frame)),
                    },
                };
                let Some(entry) = self.items.iter_mut().find(|(_, d)| d.is_none()) else {
                    return Err(self.protocol("a DUMP reply for no key".into()));
                };
                entry.1 = Some(dumped);
                if self.expiry == ExpiryRead::Skip {
                    return Ok(self.complete(None, now_ms));
                }
                Ok(None)
            }
            Expect::Expiry => {
                let expiry = match incoming {
                    Incoming::Frame(Frame::Integer(n)) => Some(n),
                    Incoming::Frame(frame) if redirect_of(&frame).is_some() => {
                        // The slot moved between the two reads: read both again there.
                        if let (Some(entry), Some(r)) =
                            (self.items.front_mut(), redirect_of(&frame))
                        {
                            entry.1 = Some(Dumped::Redirected(r));
                        }
                        None
                    }
                    Incoming::Frame(frame) => {
                        let command = match self.expiry {
                            ExpiryRead::Absolute => "PEXPIRETIME",
                            _ => "PTTL",
                        };
                        return Err(self.unexpected(command, frame));
                    }
                    Incoming::TooLarge(len) => {
                        return Err(self.protocol(format!("a {len}-byte reply to an expiry read")))
                    }
                };
                Ok(self.complete(expiry, now_ms))
            }
        }
    }

    /// The oldest item has all its replies: hand it back.
    fn complete(&mut self, expiry: Option<i64>, now_ms: u64) -> Option<Checked> {
        let (item, dumped) = self.items.pop_front()?;
        let expire_at_ms = match (self.expiry, expiry) {
            (ExpiryRead::Skip, _) => None,
            (ExpiryRead::Relative, Some(n)) if n >= 0 => {
                Some(i64::try_from(now_ms).unwrap_or(i64::MAX).saturating_add(n))
            }
            (_, n) => n,
        };
        Some(match dumped {
            Some(Dumped::Value(payload)) => {
                self.avg_payload = (self.avg_payload * 7 + payload.len()) / 8;
                Checked::Seen(
                    item,
                    Seen {
                        payload: Some(payload),
                        expire_at_ms,
                    },
                )
            }
            Some(Dumped::Redirected(redirect)) => Checked::Redirected(item, redirect),
            Some(Dumped::TooLarge(len)) => Checked::TooLarge(item, len),
            Some(Dumped::Missing) | None => Checked::Seen(
                item,
                Seen {
                    payload: None,
                    expire_at_ms: expire_at_ms.map(|_| -2),
                },
            ),
        })
    }

    /// The connection was lost: every unanswered item, oldest first.
    pub fn take_in_flight(&mut self) -> Vec<Item> {
        self.expect.clear();
        self.items.drain(..).map(|(item, _)| item).collect()
    }

    fn unexpected(&self, command: &str, frame: Frame) -> Error {
        let key = self
            .items
            .front()
            .map_or_else(String::new, |(item, _)| quote_key(&item.key));
        match frame {
            Frame::Error(e) => Error::Server {
                role: Role::Target,
                endpoint: self.name.clone(),
                command: format!("{command} {key}"),
                message: text(&e),
            },
            other => self.protocol(format!("unexpected reply to {command} {key}: {other:?}")),
        }
    }

    fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            role: Role::Target,
            endpoint: self.name.clone(),
            detail,
        }
    }
}

/// How expiry is read from a server: absolutely where it can.
fn expiry_read(compare_ttl: bool, info: &ServerInfo) -> ExpiryRead {
    match (compare_ttl, info.has_pexpiretime()) {
        (false, _) => ExpiryRead::Skip,
        (true, true) => ExpiryRead::Absolute,
        (true, false) => ExpiryRead::Relative,
    }
}

fn redirect_of(frame: &Frame) -> Option<Redirect> {
    match frame {
        Frame::Error(e) => parse_redirect(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pexpiretime: bool) -> ServerInfo {
        ServerInfo {
            pexpiretime,
            ..ServerInfo::default()
        }
    }

    fn item(key: &'static str) -> Item {
        Item {
            key: Bytes::from_static(key.as_bytes()),
            payload: Bytes::from_static(b"p"),
            expire_at_ms: 0,
            page: Default::default(),
        }
    }

    fn frame(f: Frame) -> Incoming {
        Incoming::Frame(f)
    }

    fn sent(out: &mut Requests) -> String {
        let bytes = out.to_bytes();
        out.advance(out.len());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn each_item_is_read_with_dump_and_its_expiry() {
        let mut role = CheckRole::new("t:1", 4, true, &info(true));
        let mut out = Requests::new();
        assert_eq!(role.send(item("a"), false, &mut out), 2);
        assert_eq!(role.send(item("b"), false, &mut out), 2);
        assert!(!role.has_room(), "a pipeline of 4 commands holds 2 keys");
        let text = sent(&mut out);
        assert!(
            text.contains("DUMP\r\n$1\r\na\r\n*2\r\n$11\r\nPEXPIRETIME\r\n$1\r\na"),
            "{text}"
        );
        let now = 1_000;
        assert_eq!(
            role.on_reply(frame(Frame::Bulk("pa".into())), now).unwrap(),
            None
        );
        let Some(Checked::Seen(a, seen)) = role.on_reply(frame(Frame::Integer(-1)), now).unwrap()
        else {
            panic!()
        };
        assert_eq!((&a.key[..], seen.expire_at_ms), (&b"a"[..], Some(-1)));
        assert_eq!(seen.payload.as_deref(), Some(&b"pa"[..]));
        role.on_reply(frame(Frame::Null), now).unwrap();
        let Some(Checked::Seen(_, gone)) = role.on_reply(frame(Frame::Integer(-2)), now).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            gone,
            Seen {
                payload: None,
                expire_at_ms: Some(-2)
            }
        );
        assert_eq!(role.in_flight(), 0);
        assert!(role.on_reply(frame(Frame::Integer(1)), now).is_err());
    }

    #[test]
    fn relative_expiry_is_made_absolute_and_no_ttl_reads_none() {
        let mut role = CheckRole::new("t:1", 64, true, &info(false));
        let mut out = Requests::new();
        role.send(item("a"), false, &mut out);
        assert!(sent(&mut out).contains("PTTL"));
        role.on_reply(frame(Frame::Bulk("p".into())), 5_000)
            .unwrap();
        let Some(Checked::Seen(_, seen)) =
            role.on_reply(frame(Frame::Integer(250)), 5_000).unwrap()
        else {
            panic!()
        };
        assert_eq!(seen.expire_at_ms, Some(5_250));

        let mut role = CheckRole::new("t:1", 64, false, &info(true));
        assert_eq!(role.send(item("a"), false, &mut out), 1);
        let Some(Checked::Seen(_, seen)) = role.on_reply(frame(Frame::Null), 1).unwrap() else {
            panic!()
        };
        assert_eq!(
            seen,
            Seen {
                payload: None,
                expire_at_ms: None
            }
        );
    }

    #[test]
    fn redirects_and_losses_hand_the_item_back() {
        let mut role = CheckRole::new("t:1", 64, true, &info(true));
        let mut out = Requests::new();
        assert_eq!(role.send(item("a"), true, &mut out), 4);
        assert!(sent(&mut out).starts_with("*1\r\n$6\r\nASKING\r\n*2\r\n$4\r\nDUMP"));
        role.send(item("b"), false, &mut out);
        assert_eq!(
            role.on_reply(frame(Frame::Simple("OK".into())), 1).unwrap(),
            None
        );
        role.on_reply(frame(Frame::Error("MOVED 1 127.0.0.1:7001".into())), 1)
            .unwrap();
        role.on_reply(frame(Frame::Simple("OK".into())), 1).unwrap();
        let moved = role
            .on_reply(frame(Frame::Error("MOVED 1 127.0.0.1:7001".into())), 1)
            .unwrap();
        assert!(
            matches!(moved, Some(Checked::Redirected(i, r)) if &i.key[..] == b"a" && r.port() == 7001)
        );
        role.on_reply(frame(Frame::Bulk("p".into())), 1).unwrap();
        let back = role.take_in_flight();
        assert_eq!(back.len(), 1);
        assert_eq!(&back[0].key[..], b"b");
        let e = {
            role.send(item("c"), false, &mut out);
            role.on_reply(frame(Frame::Error("NOPERM no dump".into())), 1)
                .unwrap_err()
        };
        assert!(e.to_string().contains("DUMP \"c\" failed: NOPERM"), "{e}");
    }
}
