//! Sockets: resolving, connecting and configuring them, and the one transport
//! type the rest of the tool reads and writes. The only module that knows
//! socket2.
//!
//! Every connect is non-blocking from the first syscall: a TCP socket is built
//! with socket2 (non-blocking, `TCP_NODELAY`, keepalive, large buffers), its
//! `connect` returns `EINPROGRESS`, and completion is seen by the loop as
//! writability followed by [`Stream::connect_result`]. So no start-up step and
//! no reconnect ever blocks a loop, and every one of them has a deadline.
//! [`Stream`] is an enum: TCP, Unix, or TLS over TCP (a rustls session that
//! `tls.rs` drives over the same non-blocking socket).

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::net::tls::{TlsClient, TlsStream};

/// Kernel socket buffers for a near server: large enough that one pipelined
/// window of commands or replies fits without a round trip per few KiB.
/// Fixing a buffer turns the kernel's autotuning off, which a far server
/// needs (its bandwidth-delay product can be many MiB), so it is done only
/// once the handshake has shown the server is near.
const SOCKET_BUFFER: usize = 1024 * 1024;

/// The most bytes one TCP connection can have in flight, as far as this
/// machine tells: the smaller of the kernel's largest receive and send
/// buffers (`tcp_rmem`, `tcp_wmem`), which autotuning grows a socket's
/// buffers to and no further. 4 MiB where the kernel does not say.
pub fn largest_buffer() -> usize {
    let largest = |path: &str| -> Option<usize> {
        std::fs::read_to_string(path)
            .ok()?
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    };
    match (
        largest("/proc/sys/net/ipv4/tcp_rmem"),
        largest("/proc/sys/net/ipv4/tcp_wmem"),
    ) {
        (Some(r), Some(w)) => r.min(w).max(64 * 1024),
        (Some(one), None) | (None, Some(one)) => one.max(64 * 1024),
        (None, None) => 4 * 1024 * 1024,
    }
}

/// A non-blocking socket, connected or connecting, registered with a mio loop.
#[derive(Debug)]
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
    /// Boxed: a rustls session is a few KiB, TCP and Unix a file descriptor.
    Tls(Box<TlsStream>),
}

/// `EINPROGRESS`: a non-blocking connect has started.
const EINPROGRESS: i32 = 115;

/// Starts a non-blocking TCP connect to `addr`.
pub fn connect_tcp(addr: SocketAddr) -> io::Result<Stream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_keepalive(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    socket.set_tcp_keepalive(&keepalive)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) || would_block(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(Stream::Tcp(mio::net::TcpStream::from_std(socket.into())))
}

/// Starts a non-blocking TCP connect to `addr` with a TLS session over it
/// that verifies `name`; the handshake runs once the connect completes.
pub fn connect_tls(addr: SocketAddr, client: &TlsClient, name: &str) -> io::Result<Stream> {
    match connect_tcp(addr)? {
        Stream::Tcp(tcp) => Ok(Stream::Tls(Box::new(client.session(tcp, name)?))),
        other => Ok(other),
    }
}

/// Starts a non-blocking connect to a Unix socket.
pub fn connect_unix(path: &std::path::Path) -> io::Result<Stream> {
    mio::net::UnixStream::connect(path).map(Stream::Unix)
}

impl Stream {
    /// After the socket turned writable: `Ok(true)` when the connect is done,
    /// `Ok(false)` when it is still in progress (a spurious event), or the
    /// connect's error (mio's contract: `take_error`, then `peer_addr`).
    pub fn connect_result(&self) -> io::Result<bool> {
        let (error, peer) = match self {
            Stream::Tcp(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Stream::Unix(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Stream::Tls(s) => (s.tcp().take_error()?, s.tcp().peer_addr().map(|_| ())),
        };
        if let Some(e) = error {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Shuts the write half, telling the server no more commands come.
    pub fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => SockRef::from(&*s).shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(s) => {
                s.shutdown_write();
                Ok(())
            }
        };
    }

    /// Sets the kernel buffers of a TCP or TLS connection to a near server
    /// to 1 MiB each way. Fixing a buffer turns autotuning off, so this is
    /// for near servers only: a far one needs its bandwidth-delay product.
    pub fn fix_buffers(&self) {
        let fd = match self {
            Stream::Tcp(s) => SockRef::from(s),
            Stream::Tls(s) => SockRef::from(s.tcp()),
            Stream::Unix(_) => return,
        };
        // Best effort: the kernel may clamp these, and a smaller buffer still works.
        let _ = fd.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = fd.set_send_buffer_size(SOCKET_BUFFER);
    }

    /// The address a TCP or TLS connection is connected to.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok(),
            Stream::Tls(s) => s.tcp().peer_addr().ok(),
            Stream::Unix(_) => None,
        }
    }

    /// True for a TLS connection whose handshake is not complete yet.
    pub fn tls_handshaking(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.is_handshaking())
    }

    /// True when a TLS session holds records to write even though rump's own
    /// queue may be empty (a handshake message, an alert).
    pub fn wants_write(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.wants_write())
    }

    /// Writes a TLS session's pending records: `Ok` when none is left,
    /// `WouldBlock` when the socket is full. Nothing to do for TCP and Unix.
    pub fn flush_records(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush_records(),
            _ => Ok(()),
        }
    }

    /// Advances a TLS handshake with what the socket has: `Ok(0)` at end of
    /// stream, `WouldBlock` when nothing arrived.
    pub fn pull_tls(&mut self) -> io::Result<usize> {
        match self {
            Stream::Tls(s) => s.pull(),
            _ => Ok(1),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
            Stream::Tls(s) => s.tcp_mut().register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
            Stream::Tls(s) => s.tcp_mut().reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
            Stream::Tls(s) => s.tcp_mut().deregister(registry),
        }
    }
}

/// `WouldBlock`: the socket has nothing more for now; wait for an event.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// `Interrupted`: a signal arrived mid-syscall; retry.
pub fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}
