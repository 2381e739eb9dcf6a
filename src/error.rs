//! The tool's error type: every way a run can fail, phrased for the user.
//!
//! Each message names the role (`source`/`target`) and the endpoint as the user
//! wrote it minus any password, says what went wrong, and where it helps, what
//! to do. `main` prints it on one line and maps it to the exit status.

use std::fmt;
use std::io;

/// Which end of the migration an error belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Where keys are read from.
    Source,
    /// Where keys are written to.
    Target,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Source => "source",
            Role::Target => "target",
        })
    }
}

/// Why a run failed.
#[derive(Debug)]
pub enum Error {
    /// Bad command line: unknown option, bad value, bad URI. Exit status 2.
    Usage(String),
    /// Could not resolve or connect to a server.
    Connect {
        role: Role,
        endpoint: String,
        source: io::Error,
    },
    /// The server refused our credentials, or wants some we did not give.
    Auth {
        role: Role,
        endpoint: String,
        message: String,
    },
    /// The server answered a command with an error reply we cannot go past.
    Server {
        role: Role,
        endpoint: String,
        command: String,
        message: String,
    },
    /// The server (or something pretending to be one) broke the protocol.
    Protocol {
        role: Role,
        endpoint: String,
        detail: String,
    },
    /// Reading or writing the socket failed mid-run, or the peer closed it.
    Io {
        role: Role,
        endpoint: String,
        source: io::Error,
    },
    /// A server did not answer in time (start-up step, or replies owed).
    Timeout {
        role: Role,
        endpoint: String,
        /// What was being waited for.
        what: String,
    },
    /// A connection was lost and not re-established within `--timeout`.
    Gone {
        role: Role,
        endpoint: String,
        /// Why it was lost.
        cause: String,
        waited: std::time::Duration,
        /// Why the last attempt to reconnect failed.
        last: String,
    },
    /// The endpoint cannot be used as asked (read-only replica, cluster, ...).
    Unsupported {
        role: Role,
        endpoint: String,
        message: String,
    },
    /// The run could not go on, for a reason the message says in full.
    Aborted(String),
    /// A dump file could not be read or written.
    Dump(crate::dump::DumpError),
    /// Setting up the process itself failed (threads, signals, poll).
    Setup(io::Error),
    /// A `--tls-*` file cannot be read or used.
    TlsFile(crate::net::tls::TlsFileError),
    /// The TLS session failed: the handshake (certificate, name, client
    /// certificate, a server that does not speak TLS) or a broken record.
    Tls {
        role: Role,
        endpoint: String,
        reason: String,
    },
}

impl Error {
    /// The exit status this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// True for what a reconnect may cure: the connection broke, could not
    /// be made, or timed out, or the server said it is not ready yet.
    pub fn is_connection_loss(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Io { .. } | Error::Timeout { .. } => true,
            Error::Server { message, .. } => {
                message.starts_with("LOADING") || message.starts_with("MASTERDOWN")
            }
            _ => false,
        }
    }

    /// The message without its role and endpoint, for sentences that name
    /// them already.
    pub fn detail(&self) -> String {
        match self {
            Error::Connect { source, .. } => format!("cannot connect: {}", io_text(source)),
            Error::Io { source, .. } => io_text(source),
            Error::Timeout { what, .. } => format!("timed out {what}"),
            Error::Server {
                command, message, ..
            } => format!("{command} failed: {message}"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg}"),
            Error::Connect {
                role,
                endpoint,
                source,
            } => write!(f, "{role} {endpoint}: cannot connect: {}", io_text(source)),
            Error::Auth {
                role,
                endpoint,
                message,
            } => write!(f, "{role} {endpoint}: authentication failed: {message}"),
            Error::Server {
                role,
                endpoint,
                command,
                message,
            } => write!(f, "{role} {endpoint}: {command} failed: {message}"),
            Error::Protocol {
                role,
                endpoint,
                detail,
            } => write!(f, "{role} {endpoint}: protocol error: {detail}"),
            Error::Io {
                role,
                endpoint,
                source,
            } => write!(f, "{role} {endpoint}: {}", io_text(source)),
            Error::Timeout {
                role,
                endpoint,
                what,
            } => write!(f, "{role} {endpoint}: timed out {what}"),
            Error::Gone {
                role,
                endpoint,
                cause,
                waited,
                last,
            } => write!(
                f,
                "{role} {endpoint}: connection lost ({cause}) and not re-established within {} s (last attempt: {last})",
                waited.as_secs_f64()
            ),
            Error::Unsupported {
                role,
                endpoint,
                message,
            } => write!(f, "{role} {endpoint}: {message}"),
            Error::Aborted(message) => write!(f, "{message}"),
            Error::Dump(e) => write!(f, "{e}"),
            Error::Setup(e) => write!(f, "cannot start: {e}"),
            Error::TlsFile(e) => write!(f, "{e}"),
            Error::Tls {
                role,
                endpoint,
                reason,
            } => write!(f, "{role} {endpoint}: TLS: {reason}"),
        }
    }
}

/// An I/O error as a short lowercase phrase ("connection refused", not
/// "Connection refused (os error 111)").
fn io_text(e: &io::Error) -> String {
    let text = match e.kind() {
        // rump's own words about what happened, kept as they are.
        _ if e.get_ref().is_some() => e.to_string(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_string(),
        io::ErrorKind::BrokenPipe => "the server closed the connection".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } | Error::Io { source, .. } => Some(source),
            Error::Setup(e) => Some(e),
            Error::Dump(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::dump::DumpError> for Error {
    fn from(e: crate::dump::DumpError) -> Self {
        Error::Dump(e)
    }
}

/// Quotes a key for an error message: printable ASCII as is, the rest escaped,
/// long keys shortened.
pub fn quote_key(key: &[u8]) -> String {
    const MAX: usize = 120;
    let mut out = String::from("\"");
    for &b in key.iter().take(MAX) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if key.len() > MAX {
        out.push_str(&format!("… ({} bytes)", key.len()));
    }
    out
}
