//! A scripted fake server: what a real Redis never sends (garbage, HTTP, a
//! reply that never comes or never ends, a SCAN that never finishes), so
//! rump's defences can be tested end to end.
//!
//! It listens on a free 127.0.0.1 port and serves each connection on its own
//! thread: it decodes the RESP commands rump sends with the `resp` crate and
//! answers each with what the test's script returns. [`plausible`] answers a
//! normal handshake, so a script only names the commands it twists. Dropping
//! the [`Fake`] stops every thread: nothing keeps generating after the test.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use resp::{Decoder, Frame};

/// How often a blocked thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// How many commands [`Fake::commands`] keeps: a rump that loops must not
/// make the test itself grow without bound.
const LOG_MAX: usize = 10_000;
/// How many copies of an endless stream's item go out per write.
const ENDLESS_BATCH: usize = 8192;
/// How many bytes of a [`Reply::ZeroBulk`] go out per write.
const ZERO_CHUNK: usize = 64 * 1024;
/// The `run_id` the fake reports (40 hex digits, like a real one).
pub const RUN_ID: &str = "fa4efa4efa4efa4efa4efa4efa4efa4efa4efa4e";

/// A command as the fake received it: its arguments.
pub type Command = Vec<Vec<u8>>;

/// What the fake does with one command.
pub enum Reply {
    /// Send these bytes (a whole reply, or anything else).
    Send(Vec<u8>),
    /// Send these bytes one at a time, one every `every`.
    Drip { bytes: Vec<u8>, every: Duration },
    /// Never answer this command nor any later one on this connection; keep
    /// reading what arrives (so rump's writes never block) until it closes.
    Never,
    /// Close the connection without answering.
    Close,
    /// Send `head`, then `item` again and again until rump stops reading
    /// (a write error) or the fake is dropped.
    Endless { head: Vec<u8>, item: Vec<u8> },
    /// A whole bulk reply of this many zero bytes, generated as it goes out
    /// (never held in memory): a value too large for rump to read. Later
    /// commands are answered as usual.
    ZeroBulk(u64),
}

impl Reply {
    /// A status reply (`+OK`).
    pub fn simple(s: &str) -> Reply {
        Reply::Send(format!("+{s}\r\n").into_bytes())
    }

    /// An integer reply.
    pub fn int(n: i64) -> Reply {
        Reply::Send(format!(":{n}\r\n").into_bytes())
    }

    /// A bulk string reply.
    pub fn bulk(b: &[u8]) -> Reply {
        Reply::Send(bulk(b))
    }
}

/// `$len\r\nbytes\r\n`.
pub fn bulk(b: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", b.len()).into_bytes();
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
    out
}

/// A SCAN reply: the next cursor and these keys.
pub fn scan_reply(cursor: &str, keys: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"*2\r\n".to_vec();
    out.extend(bulk(cursor.as_bytes()));
    out.extend(format!("*{}\r\n", keys.len()).into_bytes());
    for k in keys {
        out.extend(bulk(k));
    }
    out
}

/// The `INFO` text of a plain Redis 7.0 master holding `dbsize` keys.
pub fn info_text(dbsize: i64) -> Vec<u8> {
    format!(
        "# Server\r\nredis_version:7.0.15\r\nrun_id:{RUN_ID}\r\n\
         # Replication\r\nrole:master\r\n# Cluster\r\ncluster_enabled:0\r\n\
         # Keyspace\r\ndb0:keys={dbsize},expires=0,avg_ttl=0\r\n"
    )
    .into_bytes()
}

/// The command's name, upper-cased (`""` for an empty command).
pub fn name(cmd: &[Vec<u8>]) -> String {
    cmd.first()
        .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
        .unwrap_or_default()
}

/// What a quiet, empty-looking Redis 7.0 master of `dbsize` keys answers:
/// enough for rump's handshake (AUTH, INFO, SELECT, DBSIZE, PEXPIRETIME,
/// CLIENT …) and a scan that finds nothing. Anything unknown gets `+OK`.
pub fn plausible(cmd: &[Vec<u8>], dbsize: i64) -> Reply {
    match name(cmd).as_str() {
        "INFO" => Reply::bulk(&info_text(dbsize)),
        "PING" => Reply::simple("PONG"),
        "DBSIZE" => Reply::int(dbsize),
        "PEXPIRETIME" | "PTTL" => Reply::int(-2),
        "DUMP" => Reply::Send(b"$-1\r\n".to_vec()),
        "SCAN" => Reply::Send(scan_reply("0", &[])),
        _ => Reply::simple("OK"),
    }
}

/// The script: one reply per command.
type Script = dyn Fn(&[Vec<u8>]) -> Reply + Send + Sync;

/// State shared by the fake's threads.
struct Shared {
    stop: AtomicBool,
    connections: AtomicUsize,
    log: Mutex<Log>,
    script: Box<Script>,
}

/// What the fake received: the first [`LOG_MAX`] commands, and a count of
/// every command by name.
#[derive(Default)]
struct Log {
    first: Vec<Command>,
    counts: HashMap<String, usize>,
}

impl Log {
    fn record(&mut self, cmd: &[Vec<u8>]) {
        *self.counts.entry(name(cmd)).or_default() += 1;
        if self.first.len() < LOG_MAX {
            self.first.push(cmd.to_vec());
        }
    }
}

/// A running fake server; stops on drop.
pub struct Fake {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Fake {
    /// Starts a fake that answers every command with `script(command)`.
    pub fn start<F>(script: F) -> Fake
    where
        F: Fn(&[Vec<u8>]) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
            script: Box::new(script),
        });
        let state = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || accept_loop(&listener, &state));
        Fake {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The first commands received (up to [`LOG_MAX`]), on all connections,
    /// in arrival order.
    pub fn commands(&self) -> Vec<Command> {
        self.shared.log.lock().expect("log").first.clone()
    }

    /// How many commands named `name` (any case) were received.
    pub fn count(&self, name: &str) -> usize {
        let log = self.shared.log.lock().expect("log");
        log.counts
            .get(&name.to_ascii_uppercase())
            .copied()
            .unwrap_or(0)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut workers = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(shared);
                workers.push(std::thread::spawn(move || serve(stream, &state)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 5),
            Err(_) => break,
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

/// A connection is over: rump closed it, a write failed, or the fake was
/// dropped.
struct Gone;

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_write_timeout(Some(POLL));
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::new();
    let mut silent = false;
    loop {
        // Answer every whole command already buffered, in order.
        while !silent {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                // rump never sends anything but RESP arrays of bulk strings.
                Err(_) => return,
            };
            let cmd = command_args(frame);
            shared.log.lock().expect("log").record(&cmd);
            match (shared.script)(&cmd) {
                Reply::Send(bytes) => {
                    if write_all(&mut stream, &bytes, shared).is_err() {
                        return;
                    }
                }
                Reply::Drip { bytes, every } => {
                    for b in bytes {
                        if write_all(&mut stream, &[b], shared).is_err() {
                            return;
                        }
                        if sleep_unless_stopped(every, shared).is_err() {
                            return;
                        }
                    }
                }
                Reply::Never => silent = true,
                Reply::Close => return,
                Reply::Endless { head, item } => {
                    let _ = endless(&mut stream, &head, &item, shared);
                    return;
                }
                Reply::ZeroBulk(len) => {
                    if zero_bulk(&mut stream, len, shared).is_err() {
                        return;
                    }
                }
            }
        }
        let mut chunk = [0u8; 65536];
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) if !silent => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The arguments of a command frame (an array of bulk strings).
fn command_args(frame: Frame) -> Command {
    match frame {
        Frame::Array(items) => items
            .into_iter()
            .map(|f| match f {
                Frame::Bulk(b) | Frame::Simple(b) => b.to_vec(),
                other => format!("{other:?}").into_bytes(),
            })
            .collect(),
        other => vec![format!("{other:?}").into_bytes()],
    }
}

/// Writes all of `bytes`, retrying timeouts until the fake is dropped.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], shared: &Shared) -> Result<(), Gone> {
    while !bytes.is_empty() {
        if shared.stop.load(Ordering::SeqCst) {
            return Err(Gone);
        }
        match stream.write(bytes) {
            Ok(0) => return Err(Gone),
            Ok(n) => bytes = &bytes[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return Err(Gone),
        }
    }
    Ok(())
}

fn sleep_unless_stopped(total: Duration, shared: &Shared) -> Result<(), Gone> {
    let mut left = total;
    while !left.is_zero() {
        if shared.stop.load(Ordering::SeqCst) {
            return Err(Gone);
        }
        let step = left.min(POLL);
        std::thread::sleep(step);
        left -= step;
    }
    Ok(())
}

/// `head`, then `item` forever, until a write fails or the fake is dropped.
fn endless(stream: &mut TcpStream, head: &[u8], item: &[u8], shared: &Shared) -> Result<(), Gone> {
    write_all(stream, head, shared)?;
    let batch = item.repeat(ENDLESS_BATCH);
    loop {
        write_all(stream, &batch, shared)?;
    }
}

/// `$len\r\n`, `len` zero bytes in [`ZERO_CHUNK`] writes, then `\r\n`.
fn zero_bulk(stream: &mut TcpStream, len: u64, shared: &Shared) -> Result<(), Gone> {
    write_all(stream, format!("${len}\r\n").as_bytes(), shared)?;
    let zeros = [0u8; ZERO_CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(ZERO_CHUNK as u64) as usize;
        write_all(stream, &zeros[..n], shared)?;
        left -= n as u64;
    }
    write_all(stream, b"\r\n", shared)
}
