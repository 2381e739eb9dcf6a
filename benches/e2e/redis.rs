//! The harness's own Redis side: throwaway `redis-server` processes and a small
//! blocking client over `std::net::TcpStream` and the workspace `resp` codec.
//!
//! Pipelining is deep on purpose: a writer thread streams pre-encoded batches
//! while the calling thread decodes replies, with a bounded number of batches in
//! flight, so a measurement shows what the server can do rather than round trips.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use resp::{Decoder, Frame, Requests};

/// A child of this module, so `benches/dump.rs`, which includes this file
/// alone, builds too.
#[path = "tls.rs"]
pub(crate) mod tls;

use tls::{Certs, Mode};

/// Every fallible step of the harness reports a sentence, not an error type.
pub(crate) type Res<T> = Result<T, String>;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 * 1024;
/// Batches written but not yet answered, at most (plus the one being read).
const WINDOW: usize = 3;

/// One pre-encoded run of commands and how many replies it will produce.
pub(crate) struct Batch {
    req: Requests,
    count: usize,
}

/// Cuts a command stream into [`Batch`]es of at most `max_cmds` commands or
/// about `max_bytes` bytes.
pub(crate) struct Batcher {
    max_cmds: usize,
    max_bytes: usize,
    cur: Requests,
    count: usize,
    out: Vec<Batch>,
}

impl Batcher {
    pub(crate) fn new(max_cmds: usize, max_bytes: usize) -> Batcher {
        Batcher {
            max_cmds,
            max_bytes,
            cur: Requests::new(),
            count: 0,
            out: Vec::new(),
        }
    }

    /// The queue the next command goes into; call [`Batcher::done`] after it.
    pub(crate) fn req(&mut self) -> &mut Requests {
        &mut self.cur
    }

    /// Queues a command whose arguments are all copied.
    pub(crate) fn command(&mut self, args: &[&[u8]]) {
        self.cur.command(args);
        self.done();
    }

    /// Counts the command just queued with [`Batcher::req`].
    pub(crate) fn done(&mut self) {
        self.count += 1;
        if self.count >= self.max_cmds || self.cur.len() >= self.max_bytes {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.count > 0 {
            let req = std::mem::take(&mut self.cur);
            self.out.push(Batch {
                req,
                count: self.count,
            });
            self.count = 0;
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Batch> {
        self.cut();
        self.out
    }
}

/// How a connection reads: a TCP socket, or a TLS session over one.
enum Link {
    Plain(TcpStream),
    Tls(tls::Session),
}

/// How a connection writes; a separate handle, so a pipeline can write from
/// another thread while this one reads.
enum Sink {
    Plain(TcpStream),
    Tls(tls::Writer),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(s) => s.write(buf),
            Sink::Tls(w) => w.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sink::Plain(s) => s.write_vectored(bufs),
            Sink::Tls(w) => w.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading half of a [`Conn`]: the socket or session and the decoder.
struct Source {
    link: Link,
    buf: BytesMut,
    scratch: Vec<u8>,
    decoder: Decoder,
    name: String,
}

impl Source {
    fn read_frame(&mut self) -> Res<Frame> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(format!("{}: bad reply: {e}", self.name)),
            }
            let read = match &mut self.link {
                Link::Plain(stream) => stream
                    .read(&mut self.scratch)
                    .inspect(|&n| self.buf.extend_from_slice(&self.scratch[..n])),
                Link::Tls(session) => session.fill(&mut self.buf),
            };
            match read {
                Ok(0) => return Err(format!("{}: connection closed by the server", self.name)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{}: read: {e}", self.name)),
            }
        }
    }

    /// Unblocks a writer stuck on a full socket; the connection is done.
    fn shutdown(&self) {
        match &self.link {
            Link::Plain(stream) => {
                let _ = stream.shutdown(Shutdown::Both);
            }
            Link::Tls(session) => session.shutdown(),
        }
    }
}

/// A blocking connection to one server, plain or TLS.
pub(crate) struct Conn {
    source: Source,
    sink: Sink,
    name: String,
    /// Batches [`Conn::pipeline`] keeps unanswered at most: [`WINDOW`], or
    /// more across a latency proxy ([`Conn::set_window`]).
    window: usize,
}

impl Conn {
    fn tcp(port: u16, name: &str) -> Res<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("{name}: cannot connect to 127.0.0.1:{port}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("{name}: TCP_NODELAY: {e}"))?;
        Ok(stream)
    }

    fn new(link: Link, sink: Sink, name: &str) -> Conn {
        Conn {
            source: Source {
                link,
                buf: BytesMut::with_capacity(READ_CHUNK),
                scratch: vec![0; READ_CHUNK],
                decoder: Decoder::new(),
                name: name.to_owned(),
            },
            sink,
            name: name.to_owned(),
            window: WINDOW,
        }
    }

    /// Lets [`Conn::pipeline`] keep up to `batches` unanswered: across a
    /// round trip of tens of milliseconds, three batches would measure the
    /// window, not the server.
    pub(crate) fn set_window(&mut self, batches: usize) {
        self.window = batches.max(1);
    }

    pub(crate) fn connect(port: u16, name: &str) -> Res<Conn> {
        let stream = Conn::tcp(port, name)?;
        let sink = stream
            .try_clone()
            .map_err(|e| format!("{name}: clone socket: {e}"))?;
        Ok(Conn::new(Link::Plain(stream), Sink::Plain(sink), name))
    }

    /// A TLS connection to the TLS `port`, verified against `certs`' CA.
    pub(crate) fn connect_tls(port: u16, name: &str, certs: &Certs) -> Res<Conn> {
        let session = certs.connect(Conn::tcp(port, name)?, name)?;
        let sink = session
            .writer()
            .map_err(|e| format!("{name}: clone socket: {e}"))?;
        Ok(Conn::new(Link::Tls(session), Sink::Tls(sink), name))
    }

    /// The negotiated TLS version, suite and group; `None` on a plain connection.
    pub(crate) fn tls_description(&self) -> Option<String> {
        match &self.source.link {
            Link::Plain(_) => None,
            Link::Tls(session) => Some(session.describe()),
        }
    }

    fn read_frame(&mut self) -> Res<Frame> {
        self.source.read_frame()
    }

    /// Sends one command and returns its reply, error replies included.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> Res<Frame> {
        let mut req = Requests::new();
        req.command(args);
        write_requests(&mut self.sink, &mut req)
            .map_err(|e| format!("{}: write: {e}", self.name))?;
        self.read_frame()
    }

    /// Sends one command; an error reply is an `Err` naming the command.
    pub(crate) fn call_ok(&mut self, args: &[&[u8]]) -> Res<Frame> {
        match self.call(args)? {
            Frame::Error(e) => Err(format!(
                "{}: {} failed: {}",
                self.name,
                show_command(args),
                String::from_utf8_lossy(&e)
            )),
            frame => Ok(frame),
        }
    }

    pub(crate) fn int(&mut self, args: &[&[u8]]) -> Res<i64> {
        match self.call_ok(args)? {
            Frame::Integer(n) => Ok(n),
            other => Err(format!(
                "{}: {} answered {other:?}, not an integer",
                self.name,
                show_command(args)
            )),
        }
    }

    pub(crate) fn dbsize(&mut self) -> Res<u64> {
        Ok(self.int(&[b"DBSIZE"])?.max(0) as u64)
    }

    /// Empties every database, synchronously, so freeing memory is not timed later.
    pub(crate) fn flushall(&mut self) -> Res<()> {
        self.call_ok(&[b"FLUSHALL", b"SYNC"])
            .or_else(|_| self.call_ok(&[b"FLUSHALL"]))
            .map(drop)
    }

    /// One field of `INFO section`, e.g. `redis_version`.
    pub(crate) fn info_field(&mut self, section: &str, field: &str) -> Res<String> {
        let frame = self.call_ok(&[b"INFO", section.as_bytes()])?;
        let text = frame
            .as_bulk()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| format!("{}: INFO {section} has no {field}", self.name))
    }

    /// Every key, by `SCAN` (duplicates removed), in scan order.
    pub(crate) fn scan_all(&mut self) -> Res<Vec<Bytes>> {
        let mut cursor = Bytes::from_static(b"0");
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        loop {
            let reply = self.call_ok(&[b"SCAN", &cursor, b"COUNT", b"5000"])?;
            let bad = || format!("{}: unexpected SCAN reply", self.name);
            let mut parts = reply.into_array().map_err(|_| bad())?.into_iter();
            let (Some(Frame::Bulk(next)), Some(Frame::Array(page))) = (parts.next(), parts.next())
            else {
                return Err(bad());
            };
            for key in page {
                if let Frame::Bulk(key) = key {
                    if seen.insert(key.clone()) {
                        keys.push(key);
                    }
                }
            }
            if &next[..] == b"0" {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// `DUMP` of every key, pipelined: `None` for keys that do not exist.
    pub(crate) fn dumps(&mut self, keys: &[Bytes]) -> Res<Vec<Option<Bytes>>> {
        let mut batches = Batcher::new(2000, 1 << 20);
        for key in keys {
            batches.command(&[b"DUMP", key]);
        }
        let mut out = Vec::with_capacity(keys.len());
        self.pipeline(batches.finish(), |reply| match reply {
            Frame::Bulk(payload) => {
                out.push(Some(payload));
                Ok(())
            }
            Frame::Null => {
                out.push(None);
                Ok(())
            }
            other => Err(format!("DUMP answered {other:?}")),
        })?;
        Ok(out)
    }

    /// `command key` of every key, pipelined, each answering an integer.
    pub(crate) fn ints(&mut self, command: &[u8], keys: &[Bytes]) -> Res<Vec<i64>> {
        let mut batches = Batcher::new(1000, 1 << 20);
        for key in keys {
            batches.command(&[command, key]);
        }
        let mut out = Vec::with_capacity(keys.len());
        self.pipeline(batches.finish(), |reply| match reply {
            Frame::Integer(n) => {
                out.push(n);
                Ok(())
            }
            other => Err(format!("integer expected, got {other:?}")),
        })?;
        Ok(out)
    }

    /// Writes one batch and reads its replies on this thread (for many small
    /// batches, where [`Conn::pipeline`]'s writer thread would cost more than
    /// it saves); an error reply is an `Err`.
    #[allow(dead_code)] // used by benches/live.rs only
    pub(crate) fn send_batch(&mut self, mut batch: Batch) -> Res<()> {
        write_requests(&mut self.sink, &mut batch.req)
            .map_err(|e| format!("{}: write: {e}", self.name))?;
        for _ in 0..batch.count {
            if let Frame::Error(e) = self.read_frame()? {
                return Err(format!("{}: {}", self.name, String::from_utf8_lossy(&e)));
            }
        }
        Ok(())
    }

    /// Writes `batches` from a second thread while this one decodes the replies
    /// and hands each to `on_reply`; stops at the first error from either side.
    pub(crate) fn pipeline(
        &mut self,
        batches: Vec<Batch>,
        mut on_reply: impl FnMut(Frame) -> Res<()>,
    ) -> Res<()> {
        let Conn {
            source,
            sink,
            name,
            window,
        } = self;
        let name = &*name;
        thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<usize>(*window);
            let writer = scope.spawn(move || -> Res<()> {
                for mut batch in batches {
                    if tx.send(batch.count).is_err() {
                        return Ok(()); // the reader stopped; it says why
                    }
                    write_requests(sink, &mut batch.req)
                        .map_err(|e| format!("{name}: write: {e}"))?;
                }
                Ok(())
            });
            let mut result = Ok(());
            'batches: for count in rx.iter() {
                for _ in 0..count {
                    if let Err(e) = source.read_frame().and_then(&mut on_reply) {
                        result = Err(e);
                        break 'batches;
                    }
                }
            }
            drop(rx);
            if result.is_err() {
                // Unblock a writer stuck on a full socket; the run is abandoned.
                source.shutdown();
            }
            let written = writer
                .join()
                .unwrap_or_else(|_| Err("pipeline writer thread panicked".to_owned()));
            result.and(written)
        })
    }
}

fn write_requests(stream: &mut impl Write, req: &mut Requests) -> io::Result<()> {
    while !req.is_empty() {
        let written = {
            let mut slices = Vec::new();
            req.io_slices(&mut slices);
            stream.write_vectored(&slices)
        };
        match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => req.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A command for a message: arguments up to 40 bytes, lossy UTF-8.
pub(crate) fn show_command(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Res<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("rump-e2e-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nothing listens on now (it may be taken before it is used).
fn free_port() -> Res<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// `--enable-debug-command yes` (for `DEBUG POPULATE`) where the server has
/// the setting: 7.0 added it, and Redis 6.2 refuses it as unknown (while
/// allowing `DEBUG` anyway).
fn debug_args(bin: &Path) -> &'static [&'static str] {
    let version = Command::new(bin)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    // "Redis server v=6.2.14 sha=…"
    let major = version
        .split_once("v=")
        .and_then(|(_, v)| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m < 7 => &[],
        _ => &["--enable-debug-command", "yes"],
    }
}

/// A throwaway `redis-server` on a free 127.0.0.1 port (and a second one for
/// TLS when asked), killed by PID on drop (panics included).
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    pub(crate) name: String,
    /// The TLS port and the certificates it serves, in a lab with TLS.
    tls: Option<(u16, Arc<Certs>)>,
}

impl Server {
    /// A server named `name` (also its directory under `dir`), with `extra`
    /// arguments after the harness's own, plus a TLS listener serving
    /// `certs` when given.
    pub(crate) fn start(
        bin: &Path,
        name: &str,
        dir: &Path,
        extra: &[&str],
        certs: Option<&Arc<Certs>>,
    ) -> Res<Server> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut last_error = String::new();
        // A port found free can be taken before the server binds it: retry.
        for _ in 0..5 {
            let port = free_port()?;
            let tls = match certs {
                Some(certs) => Some((free_port()?, certs.clone())),
                None => None,
            };
            let child = Command::new(bin)
                .arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(debug_args(bin))
                .args(["--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(dir.join("server.log"))
                .args(tls.iter().flat_map(|(p, c)| c.server_args(*p)))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let mut server = Server {
                child,
                port,
                name: name.to_owned(),
                tls,
            };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e, // dropping `server` kills it
            }
        }
        Err(last_error)
    }

    /// A `--cluster-enabled` node, not yet part of a cluster. The bus port
    /// is given explicitly: the default, port + 10000, is past 65535 for half
    /// the ephemeral range. With `certs`, the node also listens for TLS and
    /// its bus is TLS (`--tls-cluster yes`), so it announces its TLS port to
    /// TLS clients and its plain port to plain ones.
    pub(crate) fn start_cluster_node(
        bin: &Path,
        name: &str,
        dir: &Path,
        certs: Option<&Arc<Certs>>,
    ) -> Res<Server> {
        let bus = free_port()?.to_string();
        let mut extra = vec![
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-port",
            &bus,
        ];
        if certs.is_some() {
            extra.extend(["--tls-cluster", "yes"]);
        }
        Server::start(bin, name, dir, &extra, certs)
    }

    fn wait_ready(&mut self) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} server exited at start-up: {status}", self.name));
            }
            if let Ok(mut conn) = Conn::connect(self.port, &self.name) {
                if let Ok(Frame::Simple(pong)) = conn.call(&[b"PING"]) {
                    if &pong[..] == b"PONG" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{} server did not answer PING in 15 s", self.name));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn conn(&self) -> Res<Conn> {
        Conn::connect(self.port, &self.name)
    }

    /// The port of `mode`; `None` for TLS on a server without it.
    pub(crate) fn port_in(&self, mode: Mode) -> Option<u16> {
        match mode {
            Mode::Plain => Some(self.port),
            Mode::Tls => self.tls.as_ref().map(|(port, _)| *port),
        }
    }

    fn no_tls(&self) -> String {
        format!("{} was started without TLS", self.name)
    }

    /// `redis://127.0.0.1:P` or `rediss://127.0.0.1:T`.
    pub(crate) fn url_in(&self, mode: Mode) -> Res<String> {
        let port = self.port_in(mode).ok_or_else(|| self.no_tls())?;
        Ok(match mode {
            Mode::Plain => format!("redis://127.0.0.1:{port}"),
            Mode::Tls => format!("rediss://127.0.0.1:{port}"),
        })
    }

    /// A connection in `mode` to `port`, a latency proxy in front of this
    /// server: TLS still verifies the server against the lab's CA.
    pub(crate) fn conn_via(&self, mode: Mode, port: u16) -> Res<Conn> {
        let name = format!("{} via :{port}", self.name);
        match (mode, &self.tls) {
            (Mode::Plain, _) => Conn::connect(port, &name),
            (Mode::Tls, Some((_, certs))) => {
                Conn::connect_tls(port, &format!("{name} (TLS)"), certs)
            }
            (Mode::Tls, None) => Err(self.no_tls()),
        }
    }

    /// A connection in `mode`: TLS verifies the server against the lab's CA.
    pub(crate) fn conn_in(&self, mode: Mode) -> Res<Conn> {
        match (mode, &self.tls) {
            (Mode::Plain, _) => self.conn(),
            (Mode::Tls, Some((port, certs))) => {
                Conn::connect_tls(*port, &format!("{} (TLS)", self.name), certs)
            }
            (Mode::Tls, None) => Err(self.no_tls()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A standalone source and target server and their directory; fields drop
/// in order, so the servers are killed before the directory is removed.
/// (`topology::Lab` builds its standalone ends from this one.)
pub(crate) struct Lab {
    pub(crate) source: Server,
    pub(crate) target: Server,
    /// The certificates both servers serve on their TLS ports, in a lab with TLS.
    pub(crate) certs: Option<Arc<Certs>>,
    pub(crate) dir: TempDir,
}

impl Lab {
    #[allow(dead_code)] // benches/dump.rs starts its lab without TLS
    pub(crate) fn start(bin: &Path) -> Res<Lab> {
        Lab::start_with(bin, false)
    }

    /// With `tls`, a fresh CA and server certificate in the lab's directory,
    /// and both servers also listening for TLS.
    pub(crate) fn start_with(bin: &Path, tls: bool) -> Res<Lab> {
        let dir = TempDir::new()?;
        let certs = match tls {
            true => Some(Arc::new(Certs::generate(dir.path())?)),
            false => None,
        };
        let source = Server::start(bin, "source", dir.path(), &[], certs.as_ref())?;
        let target = Server::start(bin, "target", dir.path(), &[], certs.as_ref())?;
        Ok(Lab {
            source,
            target,
            certs,
            dir,
        })
    }
}
