//! The restore role: what one target connection does once it is ready. It
//! turns items into pipelined `RESTORE` commands and sorts every reply.
//! Sans-IO, like the scan role: commands go into a [`Requests`] queue,
//! replies come in as frames.
//!
//! A `RESTORE` is written as a small header plus the payload `Bytes` itself
//! (a slice of the source's read buffer) through vectored writes, so a payload
//! is never copied on its way out (below `resp::DEFAULT_INLINE_MAX` bytes it is
//! appended to the header instead, which is cheaper than another iovec).
//!
//! Every item stays here until its reply arrives: a lost connection hands the
//! unacknowledged ones back ([`RestoreRole::take_in_flight`]) to be sent
//! again, so `copied` counts exactly what the target acknowledged.
//!
//! Error replies are sorted: those that doom every later write (out of memory,
//! read-only, a payload format the target cannot read, lost auth, RESTORE
//! missing) end the run at once with the server's message and a hint; those
//! that mean "not now" (LOADING, TRYAGAIN) are retried; the rest fail only
//! their key, which is counted and reported.

use std::collections::VecDeque;

use resp::{Frame, Requests};

use crate::cluster::redirect::{parse_redirect, Redirect};
use crate::dump::rdb_version_of;
use crate::engine::field_ttl;
use crate::engine::item::Item;
use crate::engine::scan::NEAR_PIPELINE;
use crate::engine::window::Window;
use crate::error::{quote_key, Error, Role};
use crate::net::handshake::text;
use crate::net::ServerInfo;

/// Most RESTOREs in flight on one target connection, however far: with the
/// channel's byte budget, which holds every unacknowledged item, it bounds
/// what a far target makes rump hold.
const MAX_RESTORES: usize = 256 * 1024;

/// What the restore role is asked to do.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// `--pipeline`: most RESTOREs in flight; `None`: sized by the round
    /// trip and the rate of acknowledgements ([`Window`]), which arrive a
    /// round trip after each RESTORE.
    pub pipeline: Option<u32>,
    /// `RESTORE … REPLACE` (default); without it existing keys are skipped.
    pub replace: bool,
    /// `--drop-field-ttl`: a hash with field TTLs goes to a target without
    /// them as a plain hash, instead of failing its key.
    pub drop_field_ttl: bool,
}

/// An item [`RestoreRole::send`] did not send.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsent {
    /// Its expiry has passed: it would arrive dead.
    Expired(Item),
    /// The target cannot hold its value (the message names the key).
    Failed(Item, String),
}

/// What [`RestoreRole::send`] sends for an item.
enum ForTarget {
    /// The payload as it came: the target reads it.
    AsIs,
    /// The payload rewritten for the target.
    Rewritten(bytes::Bytes),
    /// Nothing: the value has expired on its way (a hash whose every field
    /// had), so the key is vanished, as on the source.
    Gone,
}

/// RDB versions servers write, oldest first: 6 to 9 (Redis 4 to 6.x), 10
/// (7.0), 11 (7.2, Valkey 7.2–8.1), 12 (7.4–8.4), 13 (8.6), 80 (Valkey 9).
const KNOWN_RDB_VERSIONS: [u16; 9] = [6, 7, 8, 9, 10, 11, 12, 13, 80];

/// What became of an item the target answered for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    /// A deletion (`--live`) was applied (whether or not the key existed).
    Deleted,
    /// It existed and `--no-replace` keeps it.
    Skipped,
    /// Refused for this key only; the message names it.
    Failed(String),
    /// Not now (the target is loading, busy, or its cluster is down): send
    /// it again later.
    Retry,
    /// A cluster node says another node owns the key's slot (`MOVED`), or
    /// is importing it (`ASK`): send it there.
    Redirected(Redirect),
}

/// What a command in flight was, so its reply is read for what it is.
#[derive(Debug)]
enum Sent {
    /// A RESTORE (or DEL), and whether its payload was rewritten for the
    /// target. The item keeps the payload as it came, so the channel's
    /// budget is released by what it counted, and a resend transcodes again.
    Restore(Item, bool),
    /// `ASKING` before a RESTORE redirected by `ASK`; its `+OK` is dropped.
    Asking,
    /// A topology query (`CLUSTER SHARDS` or `CLUSTER SLOTS`).
    Topology,
}

/// A reply, read for what its command was.
#[derive(Debug)]
pub enum Reply {
    Restored(Item, Outcome),
    /// The reply to [`RestoreRole::query_topology`], as it came.
    Topology(Frame),
    /// The `+OK` of an `ASKING`.
    Asking,
}

/// The restores of one target connection.
#[derive(Debug)]
pub struct RestoreRole {
    name: String,
    opts: RestoreOptions,
    /// The target understands `RESTORE … ABSTTL`.
    absttl: bool,
    /// The newest DUMP format the target reads, when known.
    target_rdb: Option<u16>,
    in_flight: VecDeque<Sent>,
    /// RESTOREs among `in_flight`.
    restores: usize,
    /// How many RESTOREs may be in flight.
    window: Window,
    /// Recent payload size, for [`RestoreRole::connections_wanted`].
    avg_payload: usize,
    /// Payload bytes of the RESTOREs acknowledged so far.
    bytes_written: u64,
    /// Rewritten payloads the target acknowledged, since the last
    /// [`RestoreRole::take_transcoded`].
    transcoded: u64,
}

impl RestoreRole {
    pub fn new(name: &str, opts: RestoreOptions, info: &ServerInfo) -> RestoreRole {
        RestoreRole {
            name: name.to_string(),
            absttl: info.has_absttl(),
            target_rdb: info.rdb_version(),
            in_flight: VecDeque::new(),
            restores: 0,
            window: match opts.pipeline {
                Some(n) => Window::fixed(n as usize),
                None => Window::auto(NEAR_PIPELINE as usize, MAX_RESTORES),
            },
            avg_payload: 0,
            bytes_written: 0,
            transcoded: 0,
            opts,
        }
    }

    /// The newest DUMP format the target reads, as far as rump knows.
    pub fn target_rdb(&self) -> Option<u16> {
        self.target_rdb
    }

    /// Rewritten payloads acknowledged since the last call.
    pub fn take_transcoded(&mut self) -> u64 {
        std::mem::take(&mut self.transcoded)
    }

    /// The server behind the connection may have changed (a restart into
    /// another version): take what the new handshake said.
    pub fn update_server(&mut self, info: &ServerInfo) {
        self.absttl = info.has_absttl();
        self.target_rdb = info.rdb_version();
    }

    /// True while another RESTORE may go out.
    pub fn has_room(&self) -> bool {
        self.restores < self.window.size()
    }

    /// How many connections the target's writes want, `now` being used:
    /// one more when this connection's measured bandwidth-delay product
    /// comes near what one TCP connection can have in flight
    /// (`per_connection`, the kernel's largest socket buffer), as
    /// [`crate::engine::scan::ScanRole::connections_wanted`] says for reads.
    pub fn connections_wanted(&self, per_connection: usize, now: usize, most: usize) -> usize {
        self.window
            .connections_wanted(self.avg_payload, per_connection, now, most)
    }

    /// Payload bytes of the RESTOREs answered so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Takes the connection's round-trip estimate: the window follows it.
    pub fn set_rtt(&mut self, rtt: std::time::Duration, now: std::time::Instant) {
        self.window.update(rtt, now);
    }

    /// RESTOREs not yet answered.
    pub fn in_flight(&self) -> usize {
        self.restores
    }

    /// Commands of any kind not yet answered.
    pub fn owed(&self) -> usize {
        self.in_flight.len()
    }

    /// Queues a topology query; its reply comes back as [`Reply::Topology`].
    /// `shards` picks `CLUSTER SHARDS` (Redis 7.0+) over `CLUSTER SLOTS`.
    pub fn query_topology(&mut self, out: &mut Requests, shards: bool) {
        let sub: &[u8] = if shards { b"SHARDS" } else { b"SLOTS" };
        out.cmd().arg(b"CLUSTER").arg(sub).send();
        self.in_flight.push_back(Sent::Topology);
    }

    /// True while a topology query is unanswered.
    pub fn querying_topology(&self) -> bool {
        self.in_flight.iter().any(|s| matches!(s, Sent::Topology))
    }

    /// Queues one `RESTORE` (after `ASKING` when `asking`: the key's slot is
    /// being imported by this node), or gives the item back when it has
    /// already expired (`now_ms` is the wall clock in Unix ms). Returns the
    /// commands queued.
    pub fn send(
        &mut self,
        item: Item,
        asking: bool,
        out: &mut Requests,
        now_ms: u64,
    ) -> Result<usize, Unsent> {
        let expires = item.expire_at_ms != 0;
        if expires && item.expire_at_ms <= now_ms {
            return Err(Unsent::Expired(item));
        }
        self.avg_payload = (self.avg_payload * 7 + item.payload.len()) / 8;
        let absttl = expires && self.absttl;
        let ttl = match (expires, absttl) {
            (false, _) => 0,
            (true, true) => item.expire_at_ms,
            (true, false) => item.expire_at_ms - now_ms,
        };
        if item.is_deletion() {
            if asking {
                out.cmd().arg(b"ASKING").send();
                self.in_flight.push_back(Sent::Asking);
            }
            out.cmd().arg(b"DEL").arg(&item.key).send();
            self.in_flight.push_back(Sent::Restore(item, false));
            self.restores += 1;
            return Ok(1 + usize::from(asking));
        }
        // The same-version path costs two bytes read: the payload goes out
        // as it came unless the target reads only older formats.
        let (payload, transcoded) = match self.for_target(&item, now_ms) {
            Ok(ForTarget::Rewritten(rewritten)) => (rewritten, true),
            Ok(ForTarget::AsIs) => (item.payload.clone(), false),
            // A hash whose every field has expired, on its way to a target
            // without field TTLs: gone on the source too.
            Ok(ForTarget::Gone) => return Err(Unsent::Expired(item)),
            Err(why) => return Err(Unsent::Failed(item, why)),
        };
        if asking {
            out.cmd().arg(b"ASKING").send();
            self.in_flight.push_back(Sent::Asking);
        }
        let mut restore = out
            .cmd()
            .arg(b"RESTORE")
            .arg(&item.key)
            .uint(ttl)
            .shared(payload);
        if self.opts.replace {
            restore = restore.arg(b"REPLACE");
        }
        if absttl {
            restore = restore.arg(b"ABSTTL");
        }
        restore.send();
        self.in_flight.push_back(Sent::Restore(item, transcoded));
        self.restores += 1;
        Ok(1 + usize::from(asking))
    }

    /// The payload rewritten for the target when the target reads only
    /// older formats, or why the target cannot hold the value. With
    /// `--drop-field-ttl`, fields expired by `now_ms` are dropped first.
    fn for_target(&self, item: &Item, now_ms: u64) -> Result<ForTarget, String> {
        let (Some(target), Some(version)) = (self.target_rdb, rdb::payload_version(&item.payload))
        else {
            return Ok(ForTarget::AsIs);
        };
        if rdb::version_accepted(target, version) {
            return Ok(ForTarget::AsIs);
        }
        let options = rdb::EncodeOptions {
            drop_field_ttl: self.opts.drop_field_ttl,
        };
        let live = match self.opts.drop_field_ttl && field_ttl::target_lacks_field_ttls(target) {
            true => field_ttl::live_fields(&item.payload, target, &options, now_ms),
            false => None,
        };
        let rewritten = match live {
            Some(Ok(field_ttl::Live::Payload(bytes))) => Ok(ForTarget::Rewritten(bytes)),
            Some(Ok(field_ttl::Live::Gone)) => Ok(ForTarget::Gone),
            Some(Err(e)) => Err(e),
            None => rdb::transcode(&item.payload, target, &options).map(|t| match t {
                rdb::Transcoded::Unchanged => ForTarget::AsIs,
                rdb::Transcoded::Footer(bytes) | rdb::Transcoded::Reencoded(bytes) => {
                    ForTarget::Rewritten(bytes::Bytes::from(bytes))
                }
            }),
        };
        match rewritten {
            Ok(for_target) => Ok(for_target),
            Err(e) => {
                // The crate's message may already say how (it does today):
                // the hint is given once.
                let why = e.to_string();
                let hint = match e {
                    rdb::Error::FieldTtlUnsupported { .. } if !why.contains("--drop-field-ttl") => {
                        " (give --drop-field-ttl to copy it without its field TTLs)"
                    }
                    _ => "",
                };
                Err(format!(
                    "target {}: {} not copied: the source's value (RDB {version}) cannot be \
                     rewritten for this target (RDB {target}): {why}{hint}",
                    self.name,
                    quote_key(&item.key),
                ))
            }
        }
    }

    /// Takes one reply: for a RESTORE, which item it was for and what
    /// became of it.
    pub fn on_reply(&mut self, frame: Frame) -> Result<Reply, Error> {
        let item = match self.in_flight.pop_front() {
            None => return Err(self.protocol("a reply arrived for no command".into())),
            Some(Sent::Topology) => return Ok(Reply::Topology(frame)),
            // An ASKING refused shows again in the RESTORE's reply.
            Some(Sent::Asking) => return Ok(Reply::Asking),
            Some(Sent::Restore(item, transcoded)) => (item, transcoded),
        };
        let (item, transcoded) = item;
        self.restores -= 1;
        self.window.completed(1);
        self.bytes_written += item.payload.len() as u64;
        let outcome = match frame {
            Frame::Simple(_) => {
                self.transcoded += u64::from(transcoded);
                Outcome::Copied
            }
            Frame::Integer(_) if item.is_deletion() => Outcome::Deleted,
            Frame::Error(e) if item.is_deletion() && parse_redirect(&e).is_none() => {
                let server = text(&e);
                match classify(&e, None, None) {
                    Refusal::Retry => Outcome::Retry,
                    Refusal::Fatal(_) => {
                        return Err(Error::Server {
                            role: Role::Target,
                            endpoint: self.name.clone(),
                            command: format!("DEL {}", quote_key(&item.key)),
                            message: server,
                        })
                    }
                    _ => Outcome::Failed(format!(
                        "target {}: DEL {} failed: {server}",
                        self.name,
                        quote_key(&item.key)
                    )),
                }
            }
            Frame::Error(e) if !transcoded && self.newer_than_known(&item, &e) => {
                // The target reads less than its version said: go by what
                // it refused, and send the item again, rewritten.
                Outcome::Retry
            }
            Frame::Error(e)
                if transcoded && contains(&e, b"payload version or checksum are wrong") =>
            {
                Outcome::Failed(format!(
                    "target {}: RESTORE {} of the value rewritten for this target failed: {} \
                     (rump's rewrite is wrong for this server: please report it)",
                    self.name,
                    quote_key(&item.key),
                    text(&e)
                ))
            }
            Frame::Error(e) => self.on_error(&item, &e)?,
            other => return Err(self.protocol(format!("unexpected reply to RESTORE: {other:?}"))),
        };
        Ok(Reply::Restored(item, outcome))
    }

    /// A refused payload whose version rump thought the target read (or
    /// whose target's version was unknown): from now on the target is taken
    /// to read only the newest known version below the payload's. Said by
    /// the caller when it retries.
    fn newer_than_known(&mut self, item: &Item, message: &[u8]) -> bool {
        if !contains(message, b"payload version or checksum are wrong") {
            return false;
        }
        let Some(version) = rdb::payload_version(&item.payload) else {
            return false;
        };
        // A payload whose CRC is wrong is damaged, not new.
        if rdb::verify(&item.payload).is_err() {
            return false;
        }
        let below = KNOWN_RDB_VERSIONS
            .iter()
            .rev()
            .find(|&&v| v < version)
            .copied();
        match (below, self.target_rdb) {
            (Some(lower), Some(known)) if known >= version => {
                self.target_rdb = Some(lower);
                true
            }
            (Some(lower), None) => {
                self.target_rdb = Some(lower);
                true
            }
            _ => false,
        }
    }

    /// Sorts a RESTORE error: a skipped key, a failed key, a retry, or the end
    /// of the run.
    fn on_error(&self, item: &Item, message: &[u8]) -> Result<Outcome, Error> {
        if let Some(redirect) = parse_redirect(message) {
            return Ok(Outcome::Redirected(redirect));
        }
        let server = text(message);
        let payload_rdb = rdb_version_of(&item.payload);
        match classify(message, payload_rdb, self.target_rdb) {
            Refusal::Exists if !self.opts.replace => Ok(Outcome::Skipped),
            Refusal::Retry => Ok(Outcome::Retry),
            Refusal::Exists | Refusal::Key => Ok(Outcome::Failed(format!(
                "target {}: RESTORE {} failed: {server}",
                self.name,
                quote_key(&item.key)
            ))),
            Refusal::Corrupt => Ok(Outcome::Failed(format!(
                "target {}: RESTORE {} failed: {server} (the payload's checksum does not match: \
                 it was damaged on the way, or in the dump file)",
                self.name,
                quote_key(&item.key)
            ))),
            Refusal::Fatal(hint) => Err(Error::Server {
                role: Role::Target,
                endpoint: self.name.clone(),
                command: format!("RESTORE {}", quote_key(&item.key)),
                message: if hint.is_empty() {
                    server
                } else {
                    format!("{server} ({hint})")
                },
            }),
        }
    }

    /// The connection was lost: every unacknowledged item, oldest first, to
    /// be sent again (an unanswered topology query is simply forgotten).
    pub fn take_in_flight(&mut self) -> Vec<Item> {
        self.restores = 0;
        self.window.restart(std::time::Instant::now());
        std::mem::take(&mut self.in_flight)
            .into_iter()
            .filter_map(|sent| match sent {
                Sent::Restore(item, _) => Some(item),
                Sent::Asking | Sent::Topology => None,
            })
            .collect()
    }

    fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            role: Role::Target,
            endpoint: self.name.clone(),
            detail,
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
    /// The payload is damaged (its format is one the target reads).
    Corrupt,
    /// Not now: send it again after a pause.
    Retry,
    /// Every later write would fail too; the hint says what to do.
    Fatal(&'static str),
}

/// Sorts a RESTORE error reply by its error code. `payload_rdb` is the
/// payload's RDB version and `target_rdb` the newest the target reads, when
/// known: together they tell a newer format from a damaged payload.
pub fn classify(message: &[u8], payload_rdb: Option<u16>, target_rdb: Option<u16>) -> Refusal {
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
        // A redirect from a server that is not known as a cluster node
        // (the caller handles MOVED/ASK from cluster nodes before this).
        b"MOVED" | b"ASK" | b"CROSSSLOT" => Refusal::Fatal(
            "the target answers like a Redis Cluster node but did not say it is one at start-up",
        ),
        b"LOADING" | b"TRYAGAIN" | b"BUSY" | b"MASTERDOWN" | b"CLUSTERDOWN" => Refusal::Retry,
        b"ERR" if contains(message, b"unknown command") => Refusal::Fatal(
            "RESTORE is disabled or renamed on the target; rump cannot write without it",
        ),
        _ if contains(message, b"payload version or checksum are wrong") => {
            match (payload_rdb, target_rdb) {
                (Some(p), Some(t)) if p <= t => Refusal::Corrupt,
                _ => Refusal::Fatal(
                    "the source writes a newer DUMP format than the target reads, \
                     e.g. Valkey 8 or Redis 7.2+ to Redis 7.0: use a target at least as new as the source",
                ),
            }
        }
        _ => Refusal::Key,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::item::PageId;
    use bytes::Bytes;

    #[test]
    fn restore_errors_are_sorted_by_code() {
        let c = |m: &[u8]| classify(m, None, None);
        assert_eq!(
            c(b"BUSYKEY Target key name already exists."),
            Refusal::Exists
        );
        assert!(matches!(
            c(b"OOM command not allowed when used memory > 'maxmemory'."),
            Refusal::Fatal(h) if h.contains("out of memory")
        ));
        assert!(matches!(
            c(b"READONLY You can't write against a read only replica."),
            Refusal::Fatal(_)
        ));
        assert!(matches!(c(b"MOVED 3999 127.0.0.1:6381"), Refusal::Fatal(_)));
        assert_eq!(c(b"ERR Bad data format"), Refusal::Key);
        assert_eq!(
            c(b"NOPERM this user has no permissions to access one of the keys used as arguments"),
            Refusal::Key
        );
        assert!(matches!(
            c(b"NOPERM this user has no permissions to run the 'restore' command"),
            Refusal::Fatal(_)
        ));
        assert_eq!(
            c(b"LOADING Redis is loading the dataset in memory"),
            Refusal::Retry
        );
        assert_eq!(
            c(b"TRYAGAIN Multiple keys request during rehashing of slot"),
            Refusal::Retry
        );
        assert_eq!(c(b""), Refusal::Key);
    }

    #[test]
    fn a_missing_restore_ends_the_run_at_the_first_key() {
        assert!(matches!(
            classify(b"ERR unknown command 'RESTORE', with args beginning with: ", None, None),
            Refusal::Fatal(h) if h.contains("RESTORE is disabled")
        ));
    }

    #[test]
    fn a_damaged_payload_is_not_blamed_on_a_newer_format() {
        let m = b"ERR DUMP payload version or checksum are wrong";
        assert_eq!(classify(m, Some(10), Some(10)), Refusal::Corrupt);
        assert_eq!(classify(m, Some(9), Some(11)), Refusal::Corrupt);
        assert!(matches!(
            classify(m, Some(11), Some(10)),
            Refusal::Fatal(h) if h.contains("newer DUMP format")
        ));
        assert!(matches!(classify(m, None, Some(10)), Refusal::Fatal(_)));
    }

    fn item(key: &'static str, expire_at_ms: u64) -> Item {
        // A payload of RDB 10, which the Redis 7.0 of `info()` reads as it is.
        let mut payload = vec![7u8; 600];
        payload[590] = 10;
        payload[591] = 0;
        Item {
            key: Bytes::from_static(key.as_bytes()),
            payload: Bytes::from(payload),
            expire_at_ms,
            page: PageId::default(),
        }
    }

    fn info() -> ServerInfo {
        crate::net::info::parse_info("redis_version:7.0.15\r\n")
    }

    fn fixture(item_key: &'static str, payload: &'static [u8]) -> Item {
        Item {
            key: Bytes::from_static(item_key.as_bytes()),
            payload: Bytes::from_static(payload),
            expire_at_ms: 0,
            page: PageId::default(),
        }
    }

    fn opts() -> RestoreOptions {
        RestoreOptions {
            pipeline: Some(8),
            replace: true,
            drop_field_ttl: false,
        }
    }

    #[test]
    fn newer_payloads_are_rewritten_and_counted_once_acknowledged() {
        // A listpack set from Valkey 8.1 (RDB 11) into Redis 7.0 (RDB 10).
        let set = fixture(
            "s",
            include_bytes!("../../rdb/tests/fixtures/valkey-8.1/set_small.dump"),
        );
        let mut role = RestoreRole::new("t:1", opts(), &info());
        let mut out = Requests::new();
        assert_eq!(role.send(set.clone(), false, &mut out, 1000), Ok(1));
        let sent = out.to_bytes();
        // The RESTORE carries another payload: a plain set (type 2) of RDB 10.
        let original = &set.payload[..];
        assert!(!sent.windows(original.len()).any(|w| w == original));
        let rewritten = rdb::transcode(&set.payload, 10, &rdb::EncodeOptions::default()).unwrap();
        let rdb::Transcoded::Reencoded(expected) = rewritten else {
            panic!("{rewritten:?}")
        };
        assert_eq!(
            (expected[0], rdb::payload_version(&expected)),
            (2, Some(10))
        );
        assert!(sent.windows(expected.len()).any(|w| w == &expected[..]));
        assert_eq!(role.take_transcoded(), 0, "counted on acknowledgement");
        let reply = role
            .on_reply(Frame::Simple(Bytes::from_static(b"OK")))
            .unwrap();
        let Reply::Restored(back, Outcome::Copied) = reply else {
            panic!("{reply:?}")
        };
        // The item keeps the payload it came with: the channel's budget
        // counts that one.
        assert_eq!(back.payload, set.payload);
        assert_eq!(role.take_transcoded(), 1);
    }

    #[test]
    fn a_refused_version_the_target_claimed_to_read_lowers_it_and_retries() {
        // Redis 7.0's payload (RDB 10) into a server that says 7.0 but reads
        // only RDB 9: the first refusal tells, the retry is rewritten.
        let string = fixture(
            "k",
            include_bytes!("../../rdb/tests/fixtures/redis-7.0/str_raw.dump"),
        );
        let mut role = RestoreRole::new("t:1", opts(), &info());
        let mut out = Requests::new();
        role.send(string, false, &mut out, 1000).unwrap();
        let refusal = Frame::Error(Bytes::from_static(
            b"ERR DUMP payload version or checksum are wrong",
        ));
        let Reply::Restored(again, Outcome::Retry) = role.on_reply(refusal).unwrap() else {
            panic!("a retry")
        };
        assert_eq!(role.target_rdb(), Some(9));
        role.send(again, false, &mut out, 1000).unwrap();
        let ok = Frame::Simple(Bytes::from_static(b"OK"));
        assert!(matches!(
            role.on_reply(ok).unwrap(),
            Reply::Restored(_, Outcome::Copied)
        ));
        assert_eq!(role.take_transcoded(), 1);
    }

    #[test]
    fn field_ttls_a_target_cannot_hold_fail_the_key_or_are_dropped() {
        let hash = fixture(
            "h",
            include_bytes!("../../rdb/tests/fixtures/valkey-9.1/hash_ttl_small.dump"),
        );
        let mut role = RestoreRole::new("t:1", opts(), &info());
        let mut out = Requests::new();
        match role.send(hash.clone(), false, &mut out, 1000) {
            Err(Unsent::Failed(item, why)) => {
                assert_eq!(item, hash);
                assert!(
                    why.contains("\"h\"") && why.contains("--drop-field-ttl"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(out.is_empty(), "nothing is sent for a failed key");
        let dropping = RestoreOptions {
            drop_field_ttl: true,
            ..opts()
        };
        let mut role = RestoreRole::new("t:1", dropping, &info());
        assert_eq!(role.send(hash, false, &mut out, 1000), Ok(1));
    }

    #[test]
    fn a_round_trip_holding_a_socket_buffer_wants_one_more_connection() {
        let opts = RestoreOptions {
            pipeline: None,
            replace: true,
            drop_field_ttl: false,
        };
        let mut role = RestoreRole::new("t:1", opts, &info());
        let (t0, rtt) = (
            std::time::Instant::now(),
            std::time::Duration::from_millis(80),
        );
        role.set_rtt(rtt, t0);
        assert_eq!(
            role.connections_wanted(4096, 1, 4),
            1,
            "nothing measured yet"
        );
        let mut out = Requests::new();
        for _ in 0..100 {
            role.send(item("a", 0), false, &mut out, 1000).unwrap();
            role.on_reply(Frame::Simple("OK".into())).unwrap();
        }
        // 100 items of 600 bytes in 160 ms: 375 kB/s, 30 kB per 80 ms.
        role.set_rtt(rtt, t0 + 2 * rtt);
        assert_eq!(role.connections_wanted(32 * 1024, 1, 4), 2);
        assert_eq!(
            role.connections_wanted(32 * 1024, 4, 4),
            4,
            "at most `most`"
        );
        assert_eq!(role.connections_wanted(1024 * 1024, 1, 4), 1, "far below");
    }

    #[test]
    fn items_stay_until_acknowledged_and_come_back_when_lost() {
        let opts = RestoreOptions {
            pipeline: Some(2),
            replace: true,
            drop_field_ttl: false,
        };
        let mut role = RestoreRole::new("t:1", opts, &info());
        let mut out = Requests::new();
        role.send(item("a", 0), false, &mut out, 1000).unwrap();
        role.send(item("b", 5000), false, &mut out, 1000).unwrap();
        assert!(!role.has_room());
        let text = String::from_utf8_lossy(&out.to_bytes()).into_owned();
        assert!(
            text.starts_with("*5\r\n$7\r\nRESTORE\r\n$1\r\na\r\n$1\r\n0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("*6\r\n$7\r\nRESTORE\r\n$1\r\nb\r\n$4\r\n5000\r\n"),
            "{text}"
        );
        assert!(text.ends_with("REPLACE\r\n$6\r\nABSTTL\r\n"), "{text}");
        let Reply::Restored(done, outcome) = role.on_reply(Frame::Simple("OK".into())).unwrap()
        else {
            panic!("a RESTORE's reply");
        };
        assert_eq!((&done.key[..], outcome), (&b"a"[..], Outcome::Copied));
        let back = role.take_in_flight();
        assert_eq!(back.len(), 1);
        assert!(role.has_room());
        assert_eq!(&back[0].key[..], b"b");
        assert_eq!(role.in_flight(), 0);
        assert!(
            role.on_reply(Frame::Simple("OK".into())).is_err(),
            "no command is owed"
        );
    }

    #[test]
    fn expired_items_are_given_back_and_refusals_sorted() {
        let opts = RestoreOptions {
            pipeline: Some(8),
            replace: false,
            drop_field_ttl: false,
        };
        let mut role = RestoreRole::new("t:1", opts, &info());
        let mut out = Requests::new();
        assert!(role.send(item("old", 999), false, &mut out, 1000).is_err());
        role.send(item("x", 0), false, &mut out, 1000).unwrap();
        role.send(item("y", 0), false, &mut out, 1000).unwrap();
        role.send(item("z", 0), false, &mut out, 1000).unwrap();
        let outcome = |r: Reply| match r {
            Reply::Restored(_, o) => o,
            other => panic!("{other:?}"),
        };
        let o = outcome(
            role.on_reply(Frame::Error("BUSYKEY exists".into()))
                .unwrap(),
        );
        assert_eq!(o, Outcome::Skipped);
        let o = outcome(
            role.on_reply(Frame::Error("ERR Bad data format".into()))
                .unwrap(),
        );
        assert!(matches!(o, Outcome::Failed(m) if m.contains("RESTORE \"y\" failed")));
        let e = role
            .on_reply(Frame::Error("OOM no room".into()))
            .unwrap_err();
        assert!(e.to_string().contains("out of memory"), "{e}");
    }

    #[test]
    fn cluster_replies_are_read_for_what_their_command_was() {
        let opts = RestoreOptions {
            pipeline: Some(8),
            replace: true,
            drop_field_ttl: false,
        };
        let mut role = RestoreRole::new("t:1", opts, &info());
        let mut out = Requests::new();
        assert_eq!(role.send(item("a", 0), true, &mut out, 1000), Ok(2));
        role.send(item("b", 0), false, &mut out, 1000).unwrap();
        role.query_topology(&mut out, true);
        assert!(role.querying_topology());
        assert_eq!((role.in_flight(), role.owed()), (2, 4));
        let text = String::from_utf8_lossy(&out.to_bytes()).into_owned();
        assert!(
            text.starts_with("*1\r\n$6\r\nASKING\r\n*5\r\n$7\r\nRESTORE"),
            "{text}"
        );
        assert!(
            text.ends_with("*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n"),
            "{text}"
        );
        assert!(matches!(
            role.on_reply(Frame::Simple("OK".into())).unwrap(),
            Reply::Asking
        ));
        let moved = role
            .on_reply(Frame::Error("MOVED 15495 127.0.0.1:7002".into()))
            .unwrap();
        assert!(matches!(
            moved,
            Reply::Restored(_, Outcome::Redirected(Redirect::Moved { slot: 15495, .. }))
        ));
        let ask = role
            .on_reply(Frame::Error("ASK 3300 127.0.0.1:7001".into()))
            .unwrap();
        assert!(matches!(
            ask,
            Reply::Restored(i, Outcome::Redirected(Redirect::Ask { slot: 3300, .. })) if &i.key[..] == b"b"
        ));
        assert!(matches!(
            role.on_reply(Frame::Array(vec![])).unwrap(),
            Reply::Topology(_)
        ));
        assert_eq!(role.owed(), 0);
        assert_eq!(
            classify(b"CLUSTERDOWN The cluster is down", None, None),
            Refusal::Retry
        );
    }
}
