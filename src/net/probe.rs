//! Telling a plain-text server from a slow TLS one.
//!
//! A Redis server on a plain-text port that receives a TLS ClientHello
//! answers nothing: it reads commands up to a newline, and the byte it
//! looks for never comes before a NUL that stops its search. So a
//! `rediss://` URI pointed at a plain port would wait out the whole
//! `--timeout`. When the TLS handshake has heard nothing for a moment, a
//! second, throwaway plain connection asks the same address `PING`: a RESP
//! answer (`+PONG`, or `-NOAUTH` when a password is set) proves a plain-text
//! server, and the run fails at once saying so. A TLS server closes that
//! connection instead, and the handshake simply goes on waiting.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// How long a TLS handshake may hear nothing before the probe starts: many
/// round trips even across a WAN, so a TLS server is never probed in vain
/// unless it is already very slow.
pub const PROBE_AFTER: Duration = Duration::from_millis(1500);
/// How often the probe's socket is looked at while it runs.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);

/// What the probe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No answer yet.
    Unknown,
    /// A RESP answer: a plain-text server is on this port.
    PlainText,
    /// Closed, refused or answered in something else: not plain-text Redis.
    NotPlain,
}

/// A non-blocking plain connection that asks `PING` once.
#[derive(Debug)]
pub struct PlainProbe {
    socket: Socket,
    sent: bool,
    /// True once the probe has its answer (or gave up).
    done: bool,
    next: Instant,
}

impl PlainProbe {
    /// Starts the probe's connect to `addr`.
    pub fn start(addr: SocketAddr) -> io::Result<PlainProbe> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(PlainProbe {
            socket,
            sent: false,
            done: false,
            next: Instant::now(),
        })
    }

    /// When the probe should next be looked at.
    pub fn next_check(&self) -> Option<Instant> {
        (!self.done).then_some(self.next)
    }

    /// Looks at the probe's socket without waiting.
    pub fn check(&mut self) -> Verdict {
        if self.done {
            return Verdict::NotPlain;
        }
        self.next = Instant::now() + PROBE_EVERY;
        if !self.sent {
            match (&self.socket).write(b"PING\r\n") {
                Ok(_) => self.sent = true,
                Err(e) if pending(&e) => return Verdict::Unknown,
                Err(_) => return self.give_up(),
            }
        }
        let mut buf = [0u8; 16];
        match (&self.socket).read(&mut buf) {
            Ok(0) => self.give_up(),
            Ok(_) if matches!(buf[0], b'+' | b'-' | b'$' | b'*' | b':') => {
                self.done = true;
                Verdict::PlainText
            }
            Ok(_) => self.give_up(),
            Err(e) if pending(&e) => Verdict::Unknown,
            Err(_) => self.give_up(),
        }
    }

    fn give_up(&mut self) -> Verdict {
        self.done = true;
        Verdict::NotPlain
    }
}

/// The connect or the answer is still on its way.
fn pending(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn verdict(mut probe: PlainProbe) -> Verdict {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match probe.check() {
                Verdict::Unknown if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                v => return v,
            }
        }
    }

    #[test]
    fn a_resp_answer_is_plain_text_and_a_close_is_not() {
        for (answer, expected) in [
            (&b"+PONG\r\n"[..], Verdict::PlainText),
            (b"-NOAUTH Authentication required.\r\n", Verdict::PlainText),
            (b"\x15\x03\x03\x00\x02\x02\x32", Verdict::NotPlain),
            (b"", Verdict::NotPlain),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 6];
                let _ = s.read_exact(&mut buf);
                let _ = s.write_all(answer);
            });
            assert_eq!(verdict(PlainProbe::start(addr).unwrap()), expected);
            server.join().unwrap();
        }
    }
}
