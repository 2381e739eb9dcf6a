//! Fixtures for `--live`: a real writer process (`redis-cli`, fed commands
//! line by line while rump runs), a rump whose stderr is read as it runs
//! (to see when the scan is over, a connection was lost …), and the
//! mixed-type keys and changes the tests write.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use resp::Frame;

use super::{rump_bin, signal, Client, Run};
use crate::cmd;

/// What rump says once the whole keyspace is read and it only follows
/// changes.
pub const SCAN_COMPLETE: &str = "the scan is complete; following changes";

/// A `redis-cli` process writing to a server while rump runs: the test
/// feeds it commands, one per line, and it runs each as it reads it, on
/// its own connection, as an application would.
pub struct Writer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    /// `-c`: follows `MOVED` (a cluster), so the sync key is read there.
    cluster: bool,
    syncs: u64,
}

impl Writer {
    /// Starts `redis-cli -p port` (`-c` for a cluster node).
    pub fn start(port: u16, cluster: bool) -> Writer {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &port.to_string()]);
        if cluster {
            cmd.arg("-c");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-cli: {e} (apt-get install redis-tools)")
            });
        let stdin = child.stdin.take();
        Writer {
            child,
            stdin,
            port,
            cluster,
            syncs: 0,
        }
    }

    /// Hands `lines` (redis-cli commands) to the writer.
    pub fn send(&mut self, lines: &[String]) {
        let stdin = self.stdin.as_mut().expect("the writer was finished");
        let mut text = lines.join("\n");
        text.push('\n');
        stdin
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("the writer (redis-cli) went away: {e}"));
        stdin.flush().expect("flush the writer's stdin");
    }

    /// Hands `lines` over in `slices` parts, `pause` apart, so the writes
    /// are spread over time (over the scan, say).
    pub fn spread(&mut self, lines: &[String], slices: usize, pause: Duration) {
        let size = lines.len().div_ceil(slices.max(1)).max(1);
        for chunk in lines.chunks(size) {
            self.send(chunk);
            std::thread::sleep(pause);
        }
    }

    /// Returns once the writer has run everything sent so far: it writes a
    /// counter to `sync_key` last, and the server is polled for it.
    pub fn sync(&mut self, sync_key: &str, within: Duration) {
        self.syncs += 1;
        let n = self.syncs.to_string();
        self.send(&[format!("SET {sync_key} {n}")]);
        let deadline = Instant::now() + within;
        let mut c = self.sync_client(sync_key);
        loop {
            if let Frame::Bulk(b) = c.run(&["GET", sync_key]) {
                if b[..] == *n.as_bytes() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the writer did not get through its commands within {within:?}"
            );
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the writer (redis-cli) exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A client on the node that holds `key` (`MOVED` followed once).
    fn sync_client(&self, key: &str) -> Client {
        let mut c = Client::try_connect(self.port).expect("connect to the writer's server");
        if !self.cluster {
            return c;
        }
        match c.run(&["GET", key]) {
            Frame::Error(e) if e.starts_with(b"MOVED") => {
                let text = String::from_utf8_lossy(&e).into_owned();
                let port = text
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("a MOVED without a port: {text}"));
                Client::try_connect(port).expect("connect to the key's node")
            }
            _ => c,
        }
    }

    /// Ends the writer: its stdin is closed and it exits.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(Instant::now() < deadline, "redis-cli did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `rump --live` run whose stderr is read as it comes (killed if the test
/// panics first).
pub struct LiveRun {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    stdout: Arc<Mutex<String>>,
    pub command: String,
}

impl LiveRun {
    pub fn start(args: &[&str]) -> LiveRun {
        let mut child = Command::new(rump_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rump");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("rump's stderr");
        let out = child.stdout.take().expect("rump's stdout");
        let readers = vec![collect_lines(err, &stderr), collect_all(out, &stdout)];
        LiveRun {
            child: Some(child),
            stderr,
            readers,
            stdout,
            command: format!("rump {}", args.join(" ")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What rump printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until rump's stderr says `needle`; panics with what it said if
    /// rump exits first or `within` passes.
    pub fn wait_for(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .map_or(true, |c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                // Let the readers take the last of it.
                std::thread::sleep(Duration::from_millis(100));
                let what = if exited { "rump exited" } else { "timed out" };
                panic!(
                    "{what} waiting for {needle:?}\n$ {}\n--- stdout\n{}\n--- stderr\n{}",
                    self.command,
                    self.stdout.lock().map(|s| s.clone()).unwrap_or_default(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `SIGINT`, `SIGTERM` … to rump.
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Waits for rump to exit (killing it past `within`, then panicking).
    pub fn wait(mut self, within: Duration) -> Run {
        let mut child = self.child.take().expect("rump was already waited for");
        let deadline = Instant::now() + within;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let run = Run {
            status: status.and_then(|s| s.code()),
            stdout: self.stdout.lock().map(|s| s.clone()).unwrap_or_default(),
            stderr: self.stderr(),
            command: self.command.clone(),
        };
        assert!(
            status.is_some(),
            "{} still running after {within:?}\n--- stdout\n{}\n--- stderr\n{}",
            run.command,
            run.stdout,
            run.stderr
        );
        run
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn collect_lines(from: impl Read + Send + 'static, into: &Arc<Mutex<String>>) -> JoinHandle<()> {
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if let Ok(mut s) = into.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    })
}

fn collect_all(mut from: impl Read + Send + 'static, into: &Arc<Mutex<String>>) -> JoinHandle<()> {
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = from.read_to_string(&mut text);
        if let Ok(mut s) = into.lock() {
            s.push_str(&text);
        }
    })
}

/// `CONFIG SET notify-keyspace-events value` on the server of `c`.
pub fn set_events(c: &mut Client, value: &str) {
    c.ok(&["CONFIG", "SET", "notify-keyspace-events", value]);
}

/// `notify-keyspace-events` of the server of `c`, its letters sorted (the
/// server reorders them).
pub fn events_setting(c: &mut Client) -> String {
    let Frame::Array(parts) = c.ok(&["CONFIG", "GET", "notify-keyspace-events"]) else {
        panic!("CONFIG GET is not an array");
    };
    let value = parts
        .get(1)
        .and_then(Frame::as_bulk)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let mut letters: Vec<char> = value.chars().collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

/// Keys of each type [`seed_commands`] writes: the changes of a round take
/// their own keys, so every change really changes something.
pub const PER_TYPE: usize = 2000;

/// The commands that make `PER_TYPE` small keys of each type under
/// `prefix`: strings `s:`, lists `l:`, sets `set:`, sorted sets `z:`,
/// hashes `h:` and streams `x:`, every seventh with an expiry in ten
/// minutes or so. Each is small, so its DUMP payload does not depend on
/// the order it was built in (on Redis 7.0 a set of strings is a hash
/// table, whose payload does: sets hold integers).
pub fn seed_commands(prefix: &str) -> Vec<Vec<Vec<u8>>> {
    let mut commands = Vec::with_capacity(PER_TYPE * 7);
    for i in 0..PER_TYPE {
        let n = i.to_string();
        commands.push(cmd!("SET", format!("{prefix}s:{i}"), format!("v{i}")));
        commands.push(cmd!("RPUSH", format!("{prefix}l:{i}"), "a", &n));
        // Integers only: an intset's DUMP does not depend on insertion order.
        commands.push(cmd!("SADD", format!("{prefix}set:{i}"), "1000000", &n));
        commands.push(cmd!("ZADD", format!("{prefix}z:{i}"), "1", "a", "2", &n));
        commands.push(cmd!("HSET", format!("{prefix}h:{i}"), "f", &n));
        commands.push(cmd!("XADD", format!("{prefix}x:{i}"), "1-1", "f", &n));
        if i % 7 == 0 {
            let ttl = (600_000 + i).to_string();
            commands.push(cmd!("PEXPIRE", format!("{prefix}s:{i}"), ttl));
        }
    }
    commands
}

/// Changes made per kind in a round of [`changes`].
pub const PER_ROUND: usize = 100;

/// Round `round`'s changes (redis-cli lines) to the keys of
/// [`seed_commands`]: for each of `PER_ROUND` keys, new keys, a changed
/// value of every type, deletions (DEL, and a sorted set emptied), short
/// TTLs that expire within `short_ttl_ms`, long TTLs set and removed,
/// RENAME, and (`with_move`, db 0 only) MOVE to db 1. Each kind of change
/// takes keys of its own, disjoint between rounds.
pub fn changes(prefix: &str, round: usize, with_move: bool, short_ttl_ms: u64) -> Vec<String> {
    let half = PER_TYPE / 2;
    assert!(
        (round + 1) * PER_ROUND <= half,
        "round {round} runs out of keys"
    );
    let mut lines = Vec::new();
    for i in 0..PER_ROUND {
        let j = round * PER_ROUND + i;
        let k = half + j;
        let p = prefix;
        lines.extend([
            format!("SET {p}new:{round}:{i} fresh{i}"),
            format!("APPEND {p}s:{j} +{round}"),
            format!("RPUSH {p}l:{j} r{round}"),
            format!("SADD {p}set:{j} {}", 2_000_000 + round),
            format!("ZADD {p}z:{j} {round} r{round}"),
            format!("HSET {p}h:{j} r{round} v"),
            format!("XADD {p}x:{j} * r {round}"),
            format!("DEL {p}s:{k}"),
            format!("ZREM {p}z:{k} a {k}"),
            format!("SET {p}ttl:{round}:{i} gone PX {short_ttl_ms}"),
            format!("PEXPIRE {p}h:{k} 900000"),
            format!("PERSIST {p}s:{}", j - j % 7),
            format!("RENAME {p}l:{k} {p}renamed:{round}:{i}"),
        ]);
        if with_move {
            lines.push(format!("MOVE {p}set:{k} 1"));
        }
        // The same key changed again at once: coalesced, still copied right.
        lines.push(format!("APPEND {p}s:{j} !"));
    }
    lines
}
