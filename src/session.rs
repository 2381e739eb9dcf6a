//! Opening a server endpoint: connect, authenticate, select the db, and learn
//! what the server is (version, role, cluster mode, key count).
//!
//! This runs before the loops start, one command at a time on a blocking
//! socket, so every start-up failure becomes one precise message. It does not
//! do any migration work; the loops get the socket when it is done.

use std::io::{Read, Write};

use bytes::BytesMut;
use resp::{Decoder, Frame, Requests};

use crate::config::ServerEndpoint;
use crate::error::{Error, Role};
use crate::net::{self, BlockingStream, ConnectError, HANDSHAKE_TIMEOUT};

/// A server version, as `INFO server` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What the handshake learned about a server.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    /// The Redis protocol version it implements (`redis_version`; Valkey
    /// reports its Redis-compatible level here too).
    pub version: Version,
    /// `redis 7.0.15` or `valkey 8.1.1`, for messages.
    pub product: String,
    /// `run_id`: tells whether two addresses reach the same server.
    pub run_id: String,
    /// `role:slave`.
    pub replica: bool,
    /// `cluster_enabled:1`.
    pub cluster: bool,
    /// `DBSIZE` of the selected db.
    pub dbsize: u64,
    /// `PEXPIRETIME` answered the handshake's probe. Probed rather than
    /// inferred from the version: managed services rename or disable commands.
    pub pexpiretime: bool,
}

impl ServerInfo {
    /// `PEXPIRETIME` works (Redis 7.0+, not renamed away): expiry can be read
    /// as an absolute time.
    pub fn has_pexpiretime(&self) -> bool {
        self.pexpiretime
    }

    /// `RESTORE … ABSTTL` exists (Redis 5.0).
    pub fn has_absttl(&self) -> bool {
        self.version >= Version(5, 0, 0)
    }
}

/// An open, authenticated connection with its db selected.
#[derive(Debug)]
pub struct Session {
    pub role: Role,
    pub endpoint: ServerEndpoint,
    pub stream: BlockingStream,
    pub info: ServerInfo,
}

impl Session {
    /// Connects and runs the handshake for `role`.
    pub fn open(role: Role, endpoint: &ServerEndpoint) -> Result<Session, Error> {
        let name = endpoint.to_string();
        let stream = net::connect(&endpoint.addr).map_err(|e| match e {
            ConnectError::Resolve(source) => Error::Connect {
                role,
                endpoint: name.clone(),
                source: std::io::Error::new(
                    source.kind(),
                    format!("cannot resolve host ({source})"),
                ),
            },
            ConnectError::Connect(source) => Error::Connect {
                role,
                endpoint: name.clone(),
                source,
            },
        })?;
        stream
            .set_timeouts(Some(HANDSHAKE_TIMEOUT))
            .map_err(|source| Error::Io {
                role,
                endpoint: name.clone(),
                source,
            })?;
        let mut client = Client {
            role,
            name: &name,
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            decoder: Decoder::new(),
        };

        if let Some(password) = &endpoint.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &endpoint.user {
                args.push(user);
            }
            args.push(password);
            if let Frame::Error(e) = client.call(&args)? {
                return Err(Error::Auth {
                    role,
                    endpoint: name,
                    message: text(&e),
                });
            }
        }

        let info_text = match client.call(&[b"INFO"])? {
            Frame::Bulk(b) => text(&b),
            Frame::Error(e) if is_auth_error(&e) => {
                let var = match role {
                    Role::Source => "RUMP_FROM_PASSWORD",
                    Role::Target => "RUMP_TO_PASSWORD",
                };
                return Err(Error::Auth {
                    role,
                    endpoint: name,
                    message: format!(
                        "{} (give the password in the URI, redis://:PASSWORD@host, or in {var})",
                        text(&e)
                    ),
                });
            }
            other => return Err(client.unexpected("INFO", &other)),
        };
        let mut info = parse_info(&info_text);

        if info.cluster {
            return Err(Error::Unsupported {
                role,
                endpoint: name,
                message: "is a Redis Cluster node (cluster_enabled:1); cluster endpoints are not \
                          supported by this build yet"
                    .into(),
            });
        }
        if role == Role::Target && info.replica {
            return Err(Error::Unsupported {
                role,
                endpoint: name,
                message: "is a read-only replica (role:slave); point -to at the primary".into(),
            });
        }
        if endpoint.db != 0 {
            let db = endpoint.db.to_string();
            if let Frame::Error(e) = client.call(&[b"SELECT", db.as_bytes()])? {
                return Err(Error::Server {
                    role,
                    endpoint: name,
                    command: format!("SELECT {db}"),
                    message: text(&e),
                });
            }
        }
        info.dbsize = match client.call(&[b"DBSIZE"])? {
            Frame::Integer(n) => u64::try_from(n).unwrap_or(0),
            other => return Err(client.unexpected("DBSIZE", &other)),
        };
        // A read of a key that does not exist: -2 where the command works, an
        // error where it does not exist or is renamed away.
        info.pexpiretime = matches!(
            client.call(&[b"PEXPIRETIME", PROBE_KEY])?,
            Frame::Integer(_)
        );
        if !client.buf.is_empty() {
            return Err(Error::Protocol {
                role,
                endpoint: name,
                detail: "the server sent more replies than commands".into(),
            });
        }
        Ok(Session {
            role,
            endpoint: endpoint.clone(),
            stream: client.stream,
            info,
        })
    }

    /// The endpoint as messages name it.
    pub fn name(&self) -> String {
        self.endpoint.to_string()
    }
}

/// The key the handshake probes `PEXPIRETIME` with; reading it is harmless
/// whether or not it exists.
const PROBE_KEY: &[u8] = b"rump:probe:pexpiretime";

/// One-command-at-a-time client over the blocking handshake socket.
struct Client<'a> {
    role: Role,
    name: &'a str,
    stream: BlockingStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Client<'_> {
    /// Sends one command and reads its reply (an error reply is a value here).
    fn call(&mut self, args: &[&[u8]]) -> Result<Frame, Error> {
        let mut out = Requests::new();
        out.command(args);
        let bytes = out.to_bytes();
        self.stream.write_all(&bytes).map_err(|e| self.io(e))?;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::Protocol {
                        role: self.role,
                        endpoint: self.name.to_string(),
                        detail: e.to_string(),
                    })
                }
            }
            let start = self.buf.len();
            self.buf.resize(start + 16 * 1024, 0);
            let n = match self.stream.read(&mut self.buf[start..]) {
                Ok(0) => {
                    return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => n,
                Err(e) if net::interrupted(&e) => 0,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(self.io(e));
                }
            };
            self.buf.truncate(start + n);
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            role: self.role,
            endpoint: self.name.to_string(),
            source,
        }
    }

    fn unexpected(&self, command: &str, frame: &Frame) -> Error {
        match frame {
            Frame::Error(e) => Error::Server {
                role: self.role,
                endpoint: self.name.to_string(),
                command: command.to_string(),
                message: text(e),
            },
            other => Error::Protocol {
                role: self.role,
                endpoint: self.name.to_string(),
                detail: format!("unexpected reply to {command}: {other:?}"),
            },
        }
    }
}

/// True for the replies a server gives when it wants credentials.
fn is_auth_error(e: &[u8]) -> bool {
    e.starts_with(b"NOAUTH") || e.starts_with(b"NOPERM")
}

/// Server text (an error reply, INFO) as a string, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Picks the fields rump needs out of `INFO` output.
pub fn parse_info(info: &str) -> ServerInfo {
    let mut out = ServerInfo::default();
    let mut product = ("redis", String::new());
    for line in info.lines() {
        let Some((field, value)) = line.trim_end().split_once(':') else {
            continue;
        };
        match field {
            "redis_version" => {
                out.version = parse_version(value);
                if product.0 == "redis" {
                    product.1 = value.to_string();
                }
            }
            "valkey_version" => product = ("valkey", value.to_string()),
            "server_name" if value == "valkey" => product.0 = "valkey",
            "role" => out.replica = value == "slave",
            "run_id" => out.run_id = value.to_string(),
            "cluster_enabled" => out.cluster = value == "1",
            _ => {}
        }
    }
    out.product = format!("{} {}", product.0, product.1);
    out
}

fn parse_version(text: &str) -> Version {
    let mut parts = text.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    });
    Version(
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_redis_and_valkey() {
        let redis =
            parse_info("# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nrole:master\r\ncluster_enabled:0\r\n");
        assert_eq!(redis.version, Version(7, 0, 15));
        assert_eq!(redis.product, "redis 7.0.15");
        assert_eq!(redis.run_id, "abc123");
        assert!(!redis.replica && !redis.cluster);
        assert!(redis.has_absttl());

        let valkey = parse_info(
            "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nrole:slave\r\ncluster_enabled:1\r\n",
        );
        assert_eq!(valkey.version, Version(7, 2, 4));
        assert_eq!(valkey.product, "valkey 8.1.1");
        assert!(valkey.replica && valkey.cluster);

        let old = parse_info("redis_version:4.0.9\r\n");
        assert!(!old.has_absttl());
        assert_eq!(parse_info("").version, Version(0, 0, 0));
    }
}
