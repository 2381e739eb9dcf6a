//! One non-blocking connection to a server, as a small state machine:
//! connecting → handshaking → ready → closed. It owns the socket, its read
//! buffer and decoder, its queue of outgoing commands, and the count of
//! replies the server owes, which is what its reply deadline watches.
//!
//! mio's contract, which this file honours:
//! - Readiness is edge-triggered: after an event, read (or write) until the
//!   socket says `WouldBlock`, or no new event will come. We register once for
//!   both READABLE and WRITABLE and keep our own `readable`/`writable` flags,
//!   so interest never changes and nothing is ever re-registered.
//! - Spurious events are normal: a flag set by an event only means "try".
//! - `Interrupted` means retry the call.
//! - A connect is done only after writable, `take_error() == None` and a
//!   `peer_addr()` that succeeds ([`Stream::connect_result`]).
//!
//! Reading is pull-based: the role calls [`Conn::next_frame`] as long as it
//! wants replies, and stops (applying backpressure) by not calling it. The
//! `readable` flag stays set, so reading resumes without waiting for an event.
//!
//! This file does not know what the commands mean, nor what to do when a
//! connection is lost: the roles and the engine's links do.

use std::io::{IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::event::Event;
use mio::{Interest, Registry, Token};
use resp::{Decoder, Frame, Requests};

use crate::config::{ServerAddr, ServerEndpoint};
use crate::error::{Error, Role};
use crate::net::handshake::{Handshake, Progress};
use crate::net::info::ServerInfo;
use crate::net::probe::{PlainProbe, Verdict, PROBE_AFTER};
use crate::net::rtt::Rtt;
use crate::net::socket::{
    connect_tcp, connect_tls, connect_unix, interrupted, would_block, Stream,
};
use crate::net::tls::tls_failure;

/// How much room a new read buffer gets. Each payload slice pins the chunk it
/// was read into, so this also sets the granularity of what the channel's
/// byte budget holds on to.
/// A server closer than this gets fixed kernel socket buffers
/// ([`Stream::fix_buffers`]); a farther one keeps the kernel's autotuning.
const NEAR: Duration = Duration::from_millis(1);

const READ_CHUNK: usize = 64 * 1024;
/// Below this much spare room, a new chunk is allocated before reading.
const MIN_READ: usize = 4 * 1024;
/// Most bytes one `read` asks for (and zeroes first), when a large frame is
/// arriving.
const MAX_READ: usize = 256 * 1024;
/// Most elements one reply may hold, across all its nested arrays: far more
/// than any SCAN page rump asks for, and small enough that building such a
/// reply stays cheap (a hostile `*4294967295` is refused at its header).
/// With `resp`'s default `max_frame_bytes` (512 MiB + 1 MiB, so any legal
/// value fits), this bounds what one reply can make rump buffer.
const MAX_REPLY_ELEMENTS: usize = 1 << 20;

/// Where a connection is in its life.
#[derive(Debug)]
enum State {
    /// The non-blocking connect is in progress.
    Connecting,
    /// Connected; the TLS handshake is in progress (`rediss://` only).
    TlsHandshaking,
    /// Connected; the start-up commands are in flight.
    Handshaking(Handshake),
    /// The handshake is done: the role may send.
    Ready,
    /// Lost or shut; [`Conn::reopen`] starts over.
    Closed,
}

/// What [`Conn::advance`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Startup {
    /// Still connecting or handshaking.
    Pending,
    /// The handshake just completed (reported once per connection).
    Ready(Box<ServerInfo>),
    /// Already ready before this call.
    Idle,
}

/// A reply, or a value too large to hold that was skipped unread.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Frame(Frame),
    /// A bulk reply of this many bytes, over the decoder's limit: discarded as
    /// it arrives, never buffered whole.
    TooLarge(u64),
}

/// A non-blocking server connection owned by one loop.
#[derive(Debug)]
pub struct Conn {
    role: Role,
    name: String,
    endpoint: ServerEndpoint,
    token: Token,
    stream: Option<Stream>,
    /// Addresses still to try for the connect in progress.
    addrs: Vec<SocketAddr>,
    state: State,
    read_buf: BytesMut,
    decoder: Decoder,
    out: Requests,
    readable: bool,
    writable: bool,
    /// Replies the server owes us.
    owed: usize,
    /// When the server last showed it is alive while owing replies: bytes
    /// arrived, or a command was queued while nothing was owed.
    progress_at: Instant,
    /// Connect and handshake must be done by then.
    startup_deadline: Instant,
    /// Bytes of an oversized bulk still to be discarded.
    skipping: u64,
    /// Replies taken on this connection, handshake included.
    replies: u64,
    /// While a TLS handshake has heard nothing: when it began, and the
    /// plain-text probe once one is running ([`crate::net::probe`]).
    tls_silent_since: Option<Instant>,
    probe: Option<PlainProbe>,
    /// How far the server is, for the engine's windows.
    rtt: Rtt,
}

impl Conn {
    /// Starts connecting to `endpoint`; the handshake follows by itself as
    /// the loop calls [`Conn::advance`]. Both must be done within `timeout`.
    pub fn open(
        role: Role,
        endpoint: &ServerEndpoint,
        registry: &Registry,
        token: Token,
        timeout: Duration,
    ) -> Result<Conn, Error> {
        let now = Instant::now();
        let mut conn = Conn {
            role,
            name: endpoint.to_string(),
            endpoint: endpoint.clone(),
            token,
            stream: None,
            addrs: Vec::new(),
            state: State::Closed,
            read_buf: BytesMut::new(),
            decoder: reply_decoder(),
            out: Requests::new(),
            readable: false,
            writable: false,
            owed: 0,
            progress_at: now,
            startup_deadline: now + timeout,
            skipping: 0,
            replies: 0,
            tls_silent_since: None,
            probe: None,
            rtt: Rtt::default(),
        };
        conn.reopen(registry, timeout)?;
        Ok(conn)
    }

    /// Drops whatever the connection held (unsent commands, unread replies)
    /// and starts a new connect; the caller re-queues what it still needs.
    pub fn reopen(&mut self, registry: &Registry, timeout: Duration) -> Result<(), Error> {
        self.close(registry);
        self.read_buf = BytesMut::with_capacity(READ_CHUNK);
        self.decoder = reply_decoder();
        self.out = Requests::new();
        self.owed = 0;
        self.skipping = 0;
        self.replies = 0;
        self.tls_silent_since = None;
        self.probe = None;
        self.rtt.reset();
        let now = Instant::now();
        self.progress_at = now;
        self.startup_deadline = now + timeout;
        self.addrs = match &self.endpoint.addr {
            ServerAddr::Tcp { host, port } => {
                let mut addrs: Vec<SocketAddr> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|source| Error::Connect {
                        role: self.role,
                        endpoint: self.name.clone(),
                        source: std::io::Error::new(
                            source.kind(),
                            format!("cannot resolve host ({source})"),
                        ),
                    })?
                    .collect();
                // Tried from the back: keep the resolver's order.
                addrs.reverse();
                addrs
            }
            ServerAddr::Unix(_) => Vec::new(),
        };
        self.connect_next(registry)
    }

    /// Starts the connect to the next address (or the Unix socket).
    fn connect_next(&mut self, registry: &Registry) -> Result<(), Error> {
        let started = match &self.endpoint.addr {
            ServerAddr::Unix(path) => connect_unix(path),
            ServerAddr::Tcp { host, .. } => match self.addrs.pop() {
                Some(addr) if self.endpoint.tls => match &self.endpoint.tls_client {
                    Some(client) => connect_tls(
                        addr,
                        client,
                        client.name_for(self.endpoint.tls_name.as_deref(), host),
                    ),
                    None => {
                        return Err(Error::Tls {
                            role: self.role,
                            endpoint: self.name.clone(),
                            reason: "no TLS settings for this rediss:// endpoint".into(),
                        })
                    }
                },
                Some(addr) => connect_tcp(addr),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the host name has no address",
                )),
            },
        };
        let mut stream = started.map_err(|source| self.connect_error(source))?;
        registry
            .register(
                &mut stream,
                self.token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(Error::Setup)?;
        self.stream = Some(stream);
        self.state = State::Connecting;
        // A fresh socket may already be connected: try before waiting.
        self.readable = true;
        self.writable = true;
        Ok(())
    }

    /// Deregisters and drops the socket; the connection is closed.
    pub fn close(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.state = State::Closed;
        self.readable = false;
        self.writable = false;
    }

    /// Leaves the start-up poll (start-up runs on the main thread, the copy
    /// on the loops' threads, each with its own poll).
    pub fn deregister(&mut self, registry: &Registry) {
        if let Some(stream) = &mut self.stream {
            let _ = registry.deregister(stream);
        }
    }

    /// Joins a loop's poll under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> Result<(), Error> {
        self.token = token;
        if let Some(stream) = &mut self.stream {
            registry
                .register(stream, token, Interest::READABLE | Interest::WRITABLE)
                .map_err(Error::Setup)?;
            // Events seen by the old poll are not repeated: try before waiting.
            self.readable = true;
            self.writable = true;
        }
        Ok(())
    }

    /// The endpoint as messages name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn endpoint(&self) -> &ServerEndpoint {
        &self.endpoint
    }

    /// True once the handshake is done (and until the connection is lost).
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// True while a connect or handshake is in progress.
    pub fn is_connecting(&self) -> bool {
        matches!(
            self.state,
            State::Connecting | State::TlsHandshaking | State::Handshaking(_)
        )
    }

    /// Notes what an event says may now succeed.
    pub fn on_event(&mut self, event: &Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.writable = true;
        }
    }

    /// Drives the connect and the handshake as far as the socket allows.
    pub fn advance(&mut self, registry: &Registry) -> Result<Startup, Error> {
        if matches!(self.state, State::Connecting) {
            if !self.writable {
                return self.startup_deadline_check();
            }
            let done = match &self.stream {
                Some(stream) => stream.connect_result(),
                None => Ok(false),
            };
            match done {
                Ok(true) if self.stream.as_ref().is_some_and(Stream::tls_handshaking) => {
                    self.state = State::TlsHandshaking;
                    self.tls_silent_since = Some(Instant::now());
                }
                Ok(true) => self.start_handshake(),
                Ok(false) => {
                    self.writable = false;
                    return self.startup_deadline_check();
                }
                Err(e) if self.addrs.is_empty() => return Err(self.connect_error(e)),
                // Another address of the same host may answer (::1, then 127.0.0.1).
                Err(_) => {
                    self.close(registry);
                    self.connect_next(registry)?;
                    return Ok(Startup::Pending);
                }
            }
        }
        if matches!(self.state, State::TlsHandshaking) && !self.advance_tls()? {
            return self.startup_deadline_check();
        }
        if !matches!(self.state, State::Handshaking(_)) {
            return Ok(if self.is_ready() {
                Startup::Idle
            } else {
                Startup::Pending
            });
        }
        self.flush()?;
        while let Some(incoming) = self.next_incoming()? {
            let frame = match incoming {
                Incoming::Frame(frame) => frame,
                Incoming::TooLarge(len) => {
                    return Err(self.protocol(format!("a {len}-byte reply to a start-up command")))
                }
            };
            let State::Handshaking(handshake) = &mut self.state else {
                break;
            };
            match handshake.on_reply(frame, &mut self.out)? {
                Progress::Pending(queued) => {
                    self.owe(queued);
                    self.flush()?;
                }
                Progress::Done(info) => {
                    if !self.read_buf.is_empty() {
                        return Err(
                            self.protocol("the server sent more replies than commands".into())
                        );
                    }
                    self.state = State::Ready;
                    if self.rtt.estimate() < NEAR {
                        if let Some(stream) = &self.stream {
                            stream.fix_buffers();
                        }
                    }
                    return Ok(Startup::Ready(info));
                }
            }
        }
        self.startup_deadline_check()
    }

    /// Queues the start-up commands: the connection (and its TLS session)
    /// is up.
    fn start_handshake(&mut self) {
        let (handshake, owed) = Handshake::start(self.role, &self.endpoint, &mut self.out);
        self.owe(owed);
        self.state = State::Handshaking(handshake);
    }

    /// Drives the TLS handshake as far as the socket allows; `Ok(true)`
    /// once it is complete and the start-up commands are queued.
    fn advance_tls(&mut self) -> Result<bool, Error> {
        loop {
            self.flush()?;
            let Some(stream) = &mut self.stream else {
                return Ok(false);
            };
            if !stream.tls_handshaking() {
                self.start_handshake();
                return Ok(true);
            }
            if !self.readable {
                return self.probe_plain_text().map(|()| false);
            }
            match stream.pull_tls() {
                Ok(0) => {
                    return Err(self.tls(
                        "the server closed the connection during the TLS handshake                          (is this a TLS port? does it want a client certificate?)"
                            .into(),
                    ))
                }
                Ok(_) => {
                    self.progress_at = Instant::now();
                    self.tls_silent_since = None;
                    self.probe = None;
                }
                Err(e) if would_block(&e) => self.readable = false,
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    /// A TLS handshake that has heard nothing for a while may be talking to
    /// a plain-text server, which would wait silently: ask it, on the side.
    fn probe_plain_text(&mut self) -> Result<(), Error> {
        let Some(since) = self.tls_silent_since else {
            return Ok(());
        };
        if self.probe.is_none() && since.elapsed() >= PROBE_AFTER {
            let addr = self.stream.as_ref().and_then(Stream::peer_addr);
            // No probe possible: the handshake's own deadline still ends the wait.
            self.probe = addr.and_then(|addr| PlainProbe::start(addr).ok());
            if self.probe.is_none() {
                self.tls_silent_since = None;
            }
        }
        let Some(probe) = &mut self.probe else {
            return Ok(());
        };
        match probe.check() {
            Verdict::Unknown => Ok(()),
            Verdict::PlainText => Err(self.tls(
                "the server answered in plain text, not TLS: is this a plain-text port? \
                 (use redis:// for it)"
                    .into(),
            )),
            Verdict::NotPlain => {
                self.probe = None;
                self.tls_silent_since = None;
                Ok(())
            }
        }
    }

    fn startup_deadline_check(&self) -> Result<Startup, Error> {
        if Instant::now() < self.startup_deadline {
            return Ok(Startup::Pending);
        }
        let what = match &self.state {
            State::Connecting => "connecting".to_string(),
            State::TlsHandshaking => {
                "during the TLS handshake (is this a TLS port? a plain-text server may wait \
                 for more input)"
                    .to_string()
            }
            State::Handshaking(h) => {
                format!("waiting for the reply to {} (start-up)", h.waiting_for())
            }
            _ => "starting up".to_string(),
        };
        Err(Error::Timeout {
            role: self.role,
            endpoint: self.name.clone(),
            what,
        })
    }

    /// The queue the role writes commands into; it must [`Conn::owe`] one
    /// reply per command it queues.
    pub fn out(&mut self) -> &mut Requests {
        &mut self.out
    }

    /// Counts `n` more replies owed (one per command just queued).
    pub fn owe(&mut self, n: usize) {
        if self.owed == 0 && n > 0 {
            let now = Instant::now();
            self.progress_at = now;
            // Nothing queued ahead: the first reply times one round trip.
            self.rtt.start(self.replies + 1, now);
        }
        self.owed += n;
    }

    /// The round-trip estimate of this connection (zero before the first
    /// reply).
    pub fn rtt(&self) -> Duration {
        self.rtt.estimate()
    }

    /// Replies still owed.
    pub fn owed(&self) -> usize {
        self.owed
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// True when a read may return data without waiting for an event.
    pub fn may_read(&self) -> bool {
        self.readable && self.stream.is_some()
    }

    /// True when queued bytes (rump's, or a TLS session's own records)
    /// could be written now.
    pub fn may_write(&self) -> bool {
        self.writable
            && self
                .stream
                .as_ref()
                .is_some_and(|s| !self.out.is_empty() || s.wants_write())
    }

    /// A server that owes replies and has sent nothing for `timeout` is
    /// lost: it is stopped, hung, or gone without a reset.
    pub fn check_silence(&self, timeout: Duration) -> Result<(), Error> {
        if self.owed == 0 || self.progress_at.elapsed() < timeout {
            return Ok(());
        }
        Err(Error::Timeout {
            role: self.role,
            endpoint: self.name.clone(),
            what: format!(
                "waiting for replies: none for {} s with {} commands outstanding",
                timeout.as_secs_f64(),
                self.owed
            ),
        })
    }

    /// When [`Conn::check_silence`] would next fail, for the poll timeout.
    pub fn silence_deadline(&self, timeout: Duration) -> Option<Instant> {
        match self.state {
            State::Ready if self.owed > 0 => Some(self.progress_at + timeout),
            State::TlsHandshaking => {
                let probe = match (&self.probe, self.tls_silent_since) {
                    (Some(probe), _) => probe.next_check(),
                    (None, Some(since)) => Some(since + PROBE_AFTER),
                    (None, None) => None,
                };
                Some(probe.map_or(self.startup_deadline, |at| at.min(self.startup_deadline)))
            }
            State::Connecting | State::Handshaking(_) => Some(self.startup_deadline),
            _ => None,
        }
    }

    /// Writes queued commands until the queue is empty or the socket is full.
    /// A TLS session's own pending records go first, even when rump's queue
    /// is empty: nothing else would send them.
    pub fn flush(&mut self) -> Result<(), Error> {
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        while self.writable {
            match stream.flush_records() {
                Ok(()) => {}
                Err(e) if would_block(&e) => {
                    self.writable = false;
                    break;
                }
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(self.io(e)),
            }
            if self.out.is_empty() {
                break;
            }
            let mut slices: Vec<IoSlice<'_>> = Vec::new();
            self.out.io_slices(&mut slices);
            match stream.write_vectored(&slices) {
                Ok(0) => return Err(self.io(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => self.out.advance(n),
                Err(e) if would_block(&e) => self.writable = false,
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(())
    }

    /// The next complete reply, reading from the socket as needed; `Ok(None)`
    /// when the socket has nothing more for now.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        match self.next_incoming()? {
            None => Ok(None),
            Some(Incoming::Frame(frame)) => Ok(Some(frame)),
            Some(Incoming::TooLarge(len)) => Err(self.protocol(format!(
                "a {len}-byte reply, over the {}-byte limit",
                self.decoder.limits().max_bulk_len
            ))),
        }
    }

    /// Like [`Conn::next_frame`], but a bulk reply over the size limit is
    /// reported (and discarded as it arrives) instead of failing the
    /// connection, so the role can fail just that key.
    pub fn next_incoming(&mut self) -> Result<Option<Incoming>, Error> {
        loop {
            if self.skipping > 0 {
                let have = self
                    .read_buf
                    .len()
                    .min(usize::try_from(self.skipping).unwrap_or(usize::MAX));
                let _ = self.read_buf.split_to(have);
                self.skipping -= have as u64;
                if self.skipping > 0 {
                    if !self.may_read() || !self.fill()? {
                        return Ok(None);
                    }
                    continue;
                }
            }
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => {
                    self.replied();
                    return Ok(Some(Incoming::Frame(frame)));
                }
                Ok(None) => {}
                Err(resp::Error::BulkTooLarge { .. }) => {
                    if let Some((header, len)) = resp::bulk_header(&self.read_buf) {
                        let _ = self.read_buf.split_to(header);
                        self.skipping = len + 2;
                        self.decoder.reset();
                        self.replied();
                        return Ok(Some(Incoming::TooLarge(len)));
                    }
                    return Err(self.decode_error(&resp::Error::BulkTooLarge {
                        len: 0,
                        limit: self.decoder.limits().max_bulk_len,
                    }));
                }
                Err(e) => return Err(self.decode_error(&e)),
            }
            if !self.may_read() || !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Replies taken since the connection was (re)opened.
    pub fn replies(&self) -> u64 {
        self.replies
    }

    fn replied(&mut self) {
        self.replies += 1;
        self.owed = self.owed.saturating_sub(1);
        let now = Instant::now();
        self.progress_at = now;
        self.rtt.replied(self.replies, now);
    }

    /// One `read` into the buffer: `Ok(true)` if bytes arrived.
    fn fill(&mut self) -> Result<bool, Error> {
        let len = self.read_buf.len();
        // When the pending frame's size is known (a bulk header arrived), make
        // room for all of it at once: a big DUMP payload then lives in one
        // allocation of its own size, which its slice pins until the target
        // is done with it, instead of one grown by doubling.
        let missing = self.decoder.needed().saturating_sub(len);
        let spare = self.read_buf.capacity() - len;
        if missing > spare {
            self.read_buf.reserve(missing.max(READ_CHUNK));
        } else if spare < MIN_READ {
            // Grow geometrically while one frame of unknown size (a large
            // array) is larger than a chunk: O(n) copies in total, not O(n²).
            self.read_buf.reserve(READ_CHUNK.max(len));
        }
        // TLS: rustls holds the plaintext already; copy it, with no zeroing.
        if let Some(Stream::Tls(tls)) = &mut self.stream {
            let room = (self.read_buf.capacity() - len).max(MIN_READ);
            let got = match tls.read_into(&mut self.read_buf, room) {
                Ok(0) => return Err(self.io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => n,
                Err(e) if would_block(&e) => {
                    self.readable = false;
                    0
                }
                Err(e) if interrupted(&e) => 0,
                Err(e) => return Err(self.io(e)),
            };
            if got > 0 {
                self.progress_at = Instant::now();
            }
            return Ok(got > 0 || self.readable);
        }
        // Zero only what this read may fill: safe code cannot read into
        // uninitialised memory, and zeroing this much costs far less than the
        // read. Never more than the capacity, so the buffer is not regrown.
        let room = (self.read_buf.capacity() - len).min(MAX_READ.min(READ_CHUNK.max(missing)));
        self.read_buf.resize(len + room, 0);
        let Some(stream) = &mut self.stream else {
            self.read_buf.truncate(len);
            return Ok(false);
        };
        let got = match stream.read(&mut self.read_buf[len..]) {
            Ok(0) => {
                self.read_buf.truncate(len);
                return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(n) => n,
            Err(e) if would_block(&e) => {
                self.readable = false;
                0
            }
            Err(e) if interrupted(&e) => 0,
            Err(e) => {
                self.read_buf.truncate(len);
                return Err(self.io(e));
            }
        };
        self.read_buf.truncate(len + got);
        if got > 0 {
            self.progress_at = Instant::now();
        }
        Ok(got > 0 || self.readable)
    }

    /// Tells the server no more commands come (best effort).
    pub fn shutdown_write(&mut self) {
        if let Some(stream) = &mut self.stream {
            stream.shutdown_write();
        }
    }

    /// A protocol error, phrased for what the peer sent: a peer that never
    /// spoke RESP (an HTTP server, say) is told apart from a broken reply.
    fn decode_error(&self, e: &resp::Error) -> Error {
        let starting = !self.is_ready();
        let head = &self.read_buf[..self.read_buf.len().min(40)];
        let detail = if head.starts_with(b"HTTP/") {
            let line = head
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .unwrap_or_default();
            format!(
                "not a Redis server: it answered like an HTTP server ({:?})",
                String::from_utf8_lossy(line)
            )
        } else if starting
            && (0x14..=0x18).contains(&head.first().copied().unwrap_or(0))
            && head.get(1) == Some(&3)
        {
            "the server answered with TLS: use rediss:// for this port".to_string()
        } else if starting {
            format!("{e} in the reply to a start-up command (is this a Redis server?)")
        } else {
            e.to_string()
        };
        self.protocol(detail)
    }

    fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            role: self.role,
            endpoint: self.name.clone(),
            detail,
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        if let Some(reason) = tls_failure(&source) {
            return self.tls(reason.to_string());
        }
        let closed = matches!(
            source.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe
        );
        if closed
            && self.replies == 0
            && !self.endpoint.tls
            && matches!(self.state, State::Handshaking(_))
        {
            // A TLS port drops a client that speaks plain text, without a word.
            return Error::Io {
                role: self.role,
                endpoint: self.name.clone(),
                source: std::io::Error::new(
                    source.kind(),
                    "the server closed the connection before answering anything \
                     (if this port speaks TLS, use rediss://)",
                ),
            };
        }
        Error::Io {
            role: self.role,
            endpoint: self.name.clone(),
            source,
        }
    }

    fn tls(&self, reason: String) -> Error {
        Error::Tls {
            role: self.role,
            endpoint: self.name.clone(),
            reason,
        }
    }

    fn connect_error(&self, source: std::io::Error) -> Error {
        if let Some(reason) = tls_failure(&source) {
            return self.tls(reason.to_string());
        }
        Error::Connect {
            role: self.role,
            endpoint: self.name.clone(),
            source,
        }
    }
}

/// The decoder every connection reads replies with.
fn reply_decoder() -> Decoder {
    Decoder::with_limits(resp::Limits {
        max_elements: MAX_REPLY_ELEMENTS,
        ..resp::Limits::default()
    })
}
