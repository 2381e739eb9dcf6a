//! A real server for the RESTORE tests: one of the four versions the
//! fixtures come from, on a free 127.0.0.1 port in a temp dir, persistence
//! off, killed on drop; and a blocking one-command client over `resp`.
//!
//! A missing binary is a loud failure naming `scripts/install-deps.sh`,
//! never a skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use resp::{Decoder, Frame, Requests};

/// One of the four servers: its name, its binary, the RDB version it writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Version {
    pub(crate) name: &'static str,
    pub(crate) rdb: u16,
    binary: fn() -> PathBuf,
}

fn cache(sub: &str) -> PathBuf {
    let root = std::env::var("RUMP_SERVERS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/rump-servers",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    PathBuf::from(root).join(sub)
}

pub(crate) const VERSIONS: [Version; 4] = [
    Version {
        name: "redis-6.2",
        rdb: 9,
        binary: || cache("redis-6.2.14/redis-server"),
    },
    Version {
        name: "redis-7.0",
        rdb: 10,
        binary: || {
            PathBuf::from(
                std::env::var("REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".into()),
            )
        },
    },
    Version {
        name: "valkey-8.1",
        rdb: 11,
        binary: || cache("valkey-8.1.8/valkey-server"),
    },
    Version {
        name: "valkey-9.1",
        rdb: 80,
        binary: || cache("valkey-9.1.2/valkey-server"),
    },
];

/// A running server, killed on drop.
pub(crate) struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start(version: Version) -> Server {
        let binary = (version.binary)();
        assert!(
            binary.exists(),
            "no {} at {}: run scripts/install-deps.sh",
            version.name,
            binary.display()
        );
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            let child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(["--logfile", "server.log"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut server = Server { child, port, dir };
            if server.wait_ready() {
                return server;
            }
        }
        panic!("{} did not start after 5 attempts", binary.display());
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut c) = Client::connect(self.port) {
                if c.cmd(&[b"PING"]).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub(crate) fn client(&self) -> Client {
        Client::connect(self.port).unwrap_or_else(|e| {
            panic!(
                "connect to 127.0.0.1:{}: {e}\n{}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            )
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Client {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Client {
    fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(),
        })
    }

    /// Sends one command, returns its reply.
    pub(crate) fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Frame> {
        let mut out = Requests::new();
        let mut c = out.cmd();
        for a in args {
            c = c.arg(a);
        }
        c.send();
        self.stream.write_all(&out.to_bytes())?;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// `RESTORE key 0 payload REPLACE`: `Ok` or the error line.
    pub(crate) fn restore(&mut self, key: &[u8], payload: &[u8]) -> Result<(), String> {
        match self.cmd(&[b"RESTORE", key, b"0", payload, b"REPLACE"]) {
            Ok(Frame::Simple(s)) if &s[..] == b"OK" => Ok(()),
            Ok(Frame::Error(e)) => Err(String::from_utf8_lossy(&e).into_owned()),
            other => panic!("RESTORE replied {other:?}"),
        }
    }

    /// `DUMP key`.
    pub(crate) fn dump(&mut self, key: &[u8]) -> Vec<u8> {
        match self.cmd(&[b"DUMP", key]) {
            Ok(Frame::Bulk(b)) => b.to_vec(),
            other => panic!("DUMP replied {other:?}"),
        }
    }

    pub(crate) fn int(&mut self, args: &[&[u8]]) -> i64 {
        match self.cmd(args) {
            Ok(Frame::Integer(n)) => n,
            other => panic!("{:?} replied {other:?}", String::from_utf8_lossy(args[0])),
        }
    }
}
