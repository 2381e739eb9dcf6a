//! Sockets: resolving, connecting and configuring them, and the stream types
//! the rest of the tool reads and writes. The only module that knows socket2.
//!
//! A connection starts life blocking (with timeouts) for the start-up
//! handshake, where one command at a time is simplest, and is then switched to
//! non-blocking and handed to a mio loop. [`Stream`] is an enum so a TLS variant
//! can be added beside TCP and Unix without touching the loops.

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use crate::config::ServerAddr;

/// How long to wait for a TCP connect before trying the next address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout during the start-up handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Kernel socket buffers: large enough that one pipelined window of commands
/// or replies fits without a round trip per few KiB.
const SOCKET_BUFFER: usize = 1024 * 1024;

/// A connected socket in blocking mode, for the handshake.
#[derive(Debug)]
pub enum BlockingStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

/// A connected socket in non-blocking mode, registered with a mio loop.
#[derive(Debug)]
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

/// Why a connect failed: resolution and connection are told apart because the
/// user fixes them differently.
#[derive(Debug)]
pub enum ConnectError {
    /// The host name did not resolve.
    Resolve(io::Error),
    /// Every resolved address refused or timed out; the last error.
    Connect(io::Error),
}

/// Connects to `addr` with a timeout, TCP_NODELAY and keepalive set.
pub fn connect(addr: &ServerAddr) -> Result<BlockingStream, ConnectError> {
    match addr {
        ServerAddr::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(ConnectError::Resolve)?
                .collect();
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
            for addr in addrs {
                match connect_tcp(addr) {
                    Ok(stream) => return Ok(BlockingStream::Tcp(stream)),
                    Err(e) => last = e,
                }
            }
            Err(ConnectError::Connect(last))
        }
        ServerAddr::Unix(path) => std::os::unix::net::UnixStream::connect(path)
            .map(BlockingStream::Unix)
            .map_err(ConnectError::Connect),
    }
}

fn connect_tcp(addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    socket.set_keepalive(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    socket.set_tcp_keepalive(&keepalive)?;
    // Best effort: the kernel may clamp these, and a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    // socket2 connects non-blocking and polls for completion under the hood,
    // so a black-holed address costs CONNECT_TIMEOUT, not the kernel's minutes.
    socket.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
    Ok(socket.into())
}

impl BlockingStream {
    /// Sets read and write timeouts for the handshake.
    pub fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            BlockingStream::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            BlockingStream::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }

    /// Switches to non-blocking mode for a mio loop (`from_std` does not).
    pub fn into_nonblocking(self) -> io::Result<Stream> {
        self.set_timeouts(None)?;
        match self {
            BlockingStream::Tcp(s) => {
                s.set_nonblocking(true)?;
                Ok(Stream::Tcp(mio::net::TcpStream::from_std(s)))
            }
            BlockingStream::Unix(s) => {
                s.set_nonblocking(true)?;
                Ok(Stream::Unix(mio::net::UnixStream::from_std(s)))
            }
        }
    }
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BlockingStream::Tcp(s) => s.read(buf),
            BlockingStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for BlockingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BlockingStream::Tcp(s) => s.write(buf),
            BlockingStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    /// Shuts the write half, telling the server no more commands come.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => SockRef::from(s).shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
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
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
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
