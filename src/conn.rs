//! One non-blocking connection to a server, as a mio loop sees it: the socket,
//! its read buffer and decoder, and its queue of outgoing commands.
//!
//! mio's contract, which this file honours:
//! - Readiness is edge-triggered: after an event, read (or write) until the
//!   socket says `WouldBlock`, or no new event will come. We register once for
//!   both READABLE and WRITABLE and keep our own `readable`/`writable` flags,
//!   so interest never changes and nothing is ever re-registered.
//! - Spurious events are normal: a flag set by an event only means "try".
//! - `Interrupted` means retry the call.
//!
//! Reading is pull-based: the role logic calls [`Conn::next_frame`] as long as
//! it wants replies, and stops (applying backpressure) by not calling it. The
//! `readable` flag stays set, so reading resumes without waiting for an event.
//!
//! This file does not know what the commands mean; `source.rs` and `target.rs` do.

use std::io::{IoSlice, Read, Write};

use bytes::BytesMut;
use mio::event::Event;
use mio::{Interest, Registry, Token};
use resp::{Decoder, Frame, Requests};

use crate::error::{Error, Role};
use crate::net::{interrupted, would_block, Stream};
use crate::session::Session;

/// How much room a new read buffer gets. Each payload slice pins the chunk it
/// was read into, so this also sets the granularity of what the channel's
/// byte budget holds on to.
const READ_CHUNK: usize = 64 * 1024;
/// Below this much spare room, a new chunk is allocated before reading.
const MIN_READ: usize = 4 * 1024;
/// Most bytes one `read` asks for (and zeroes first), when a large frame is
/// arriving.
const MAX_READ: usize = 256 * 1024;

/// A non-blocking server connection owned by one loop.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    role: Role,
    name: String,
    read_buf: BytesMut,
    decoder: Decoder,
    /// Commands queued and not yet written.
    pub out: Requests,
    readable: bool,
    writable: bool,
}

impl Conn {
    /// Wraps a connected non-blocking stream and registers it with `registry`.
    pub fn new(
        mut stream: Stream,
        role: Role,
        name: String,
        registry: &Registry,
        token: Token,
    ) -> Result<Conn, Error> {
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(Error::Setup)?;
        Ok(Conn {
            stream,
            role,
            name,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: Decoder::new(),
            out: Requests::new(),
            // A fresh socket may already hold data or room: try before waiting.
            readable: true,
            writable: true,
        })
    }

    /// Takes over the socket of a session whose handshake is done, switched
    /// to non-blocking and registered with `registry`.
    pub fn from_session(
        session: Session,
        registry: &Registry,
        token: Token,
    ) -> Result<Conn, Error> {
        let (role, name) = (session.role, session.name());
        let stream = session
            .stream
            .into_nonblocking()
            .map_err(|source| Error::Io {
                role,
                endpoint: name.clone(),
                source,
            })?;
        Conn::new(stream, role, name, registry, token)
    }

    /// The endpoint as messages name it.
    pub fn name(&self) -> &str {
        &self.name
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

    /// True when a read may return data without waiting for an event.
    pub fn may_read(&self) -> bool {
        self.readable
    }

    /// True when queued bytes could be written now.
    pub fn may_write(&self) -> bool {
        self.writable && !self.out.is_empty()
    }

    /// Writes queued commands until the queue is empty or the socket is full.
    pub fn flush(&mut self) -> Result<(), Error> {
        while self.writable && !self.out.is_empty() {
            let mut slices: Vec<IoSlice<'_>> = Vec::new();
            self.out.io_slices(&mut slices);
            match self.stream.write_vectored(&slices) {
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
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::Protocol {
                        role: self.role,
                        endpoint: self.name.clone(),
                        detail: e.to_string(),
                    })
                }
            }
            if !self.readable || !self.fill()? {
                return Ok(None);
            }
        }
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
        // Zero only what this read may fill: safe code cannot read into
        // uninitialised memory, and zeroing this much costs far less than the
        // read. Never more than the capacity, so the buffer is not regrown.
        let room = (self.read_buf.capacity() - len).min(MAX_READ.min(READ_CHUNK.max(missing)));
        self.read_buf.resize(len + room, 0);
        let result = self.stream.read(&mut self.read_buf[len..]);
        let got = match result {
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
        Ok(got > 0 || self.readable)
    }

    /// Tells the server no more commands come (best effort).
    pub fn shutdown_write(&self) {
        self.stream.shutdown_write();
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            role: self.role,
            endpoint: self.name.clone(),
            source,
        }
    }
}
