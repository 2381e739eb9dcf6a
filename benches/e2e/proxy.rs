//! A latency proxy on 127.0.0.1 (issue 12): a wide-area link between a tool
//! and a server, made on loopback, so a WAN can be measured and tested on
//! one machine.
//!
//! Each client accepted on [`LatencyProxy::port`] gets its own connection to
//! the real server; every byte read on either side is written to the other
//! once its one-way delay has passed, in order, none lost. With a bandwidth
//! cap each direction is a serial link of that rate: a chunk starts being
//! "sent" when the chunk before it has been, and arrives its transmission
//! time plus the delay later. EOF is passed on (as a half close) once the
//! bytes before it have been, so a client that shuts down its writing side
//! still gets every reply. An error on either socket closes both.
//!
//! One thread and one `mio` loop carry all the connections of one proxy, so
//! the proxy takes one core at most and its CPU time can be read
//! ([`LatencyProxy::cpu`]) to show it was not the bottleneck. Memory is
//! bounded per direction ([`QUEUE_LIMIT`], or about a bandwidth-delay
//! product on a capped link): past it the proxy stops reading and TCP's
//! own flow control holds the sender back.
//!
//! The file is shared by the e2e bench (`benches/e2e.rs`) and the integration
//! tests (`tests/integration/util/proxy.rs`), so it uses only `std` and `mio`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

/// Bytes held per direction of one connection on an uncapped link before
/// the proxy stops reading from that side.
pub(crate) const QUEUE_LIMIT: usize = 64 << 20;

/// The largest single read: large enough that loopback rates cost few
/// system calls.
const READ_CHUNK: usize = 256 << 10;

/// Chunks given to one `writev`.
const WRITE_SLICES: usize = 64;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// What the link does to the bytes: a fixed delay each way, and optionally a
/// rate cap each way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Half the round trip added.
    pub(crate) one_way: Duration,
    /// Megabits per second each way; `None` for as fast as loopback.
    pub(crate) mbit: Option<f64>,
    /// Most bytes one connection has in the delay line each way, as a TCP
    /// connection's window (its largest socket buffer) would allow: the
    /// proxy stops reading that direction until some are delivered. `None`:
    /// only the memory bound [`QUEUE_LIMIT`].
    pub(crate) window: Option<usize>,
}

impl Shape {
    fn bytes_per_sec(&self) -> Option<f64> {
        self.mbit.map(|m| m * 1e6 / 8.0)
    }

    /// The bytes one direction may hold: on a capped link what it carries in
    /// one delay, plus a router buffer of 20 ms (at least 256 KiB), so the
    /// cap does not turn into seconds of queueing.
    fn queue_limit(&self) -> usize {
        let limit = self.window.map_or(QUEUE_LIMIT, |w| w.min(QUEUE_LIMIT));
        match self.bytes_per_sec() {
            None => limit,
            Some(rate) => {
                let in_flight = rate * self.one_way.as_secs_f64();
                let buffer = (rate * 0.020).max(256.0 * 1024.0);
                ((in_flight + buffer) as usize).min(limit)
            }
        }
    }

    /// The largest read: a millisecond's worth on a capped link (so one
    /// read is not a long burst), [`READ_CHUNK`] otherwise.
    fn read_chunk(&self) -> usize {
        match self.bytes_per_sec() {
            None => READ_CHUNK,
            Some(rate) => ((rate / 1000.0) as usize).clamp(1460, READ_CHUNK),
        }
    }
}

/// A running proxy; dropping it stops its thread and closes every connection.
pub(crate) struct LatencyProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    /// `/proc/self/task/TID` of the loop thread, for its CPU time.
    task: String,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

/// Bytes written out, per direction.
#[derive(Default)]
struct Counters {
    to_server: AtomicU64,
    to_client: AtomicU64,
}

impl LatencyProxy {
    /// A proxy to `127.0.0.1:upstream` adding `one_way` each way.
    #[allow(dead_code)] // the tests' entry point; the bench shapes its links
    pub(crate) fn start(upstream: u16, one_way: Duration) -> Result<LatencyProxy, String> {
        LatencyProxy::start_shaped(
            upstream,
            Shape {
                one_way,
                mbit: None,
                window: None,
            },
        )
    }

    /// A proxy to `127.0.0.1:upstream` adding `one_way` each way, each
    /// connection holding at most `window` bytes in flight each way.
    #[allow(dead_code)] // the tests' entry point
    pub(crate) fn start_windowed(
        upstream: u16,
        one_way: Duration,
        window: usize,
    ) -> Result<LatencyProxy, String> {
        LatencyProxy::start_shaped(
            upstream,
            Shape {
                one_way,
                mbit: None,
                window: Some(window),
            },
        )
    }

    /// A proxy to `127.0.0.1:upstream` shaping both directions as `shape`.
    pub(crate) fn start_shaped(upstream: u16, shape: Shape) -> Result<LatencyProxy, String> {
        let what = |e: io::Error| format!("latency proxy to 127.0.0.1:{upstream}: {e}");
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut listener = TcpListener::bind(addr).map_err(what)?;
        let port = listener.local_addr().map_err(what)?.port();
        let poll = Poll::new().map_err(what)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(what)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(what)?);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (tell, told) = mpsc::channel();
        let mut event_loop = Loop {
            poll,
            listener,
            upstream,
            shape,
            stop: Arc::clone(&stop),
            pairs: HashMap::new(),
            next: 0,
            buf: vec![0; shape.read_chunk()],
            counters: Arc::clone(&counters),
        };
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || {
                let task = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|p| p.file_name().map(|t| t.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                let _ = tell.send(task);
                if let Err(e) = event_loop.run() {
                    eprintln!("latency proxy :{port} → :{upstream}: stopped: {e}");
                }
            })
            .map_err(what)?;
        let task = told
            .recv()
            .map_err(|_| format!("latency proxy to 127.0.0.1:{upstream}: thread died"))?;
        Ok(LatencyProxy {
            port,
            stop,
            waker,
            task: format!("/proc/self/task/{task}"),
            counters,
            thread: Some(thread),
        })
    }

    /// The port clients connect to instead of the server's.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// CPU time of the proxy's thread so far (`schedstat`, nanoseconds;
    /// `None` where the kernel does not say).
    pub(crate) fn cpu(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(format!("{}/schedstat", self.task)).ok()?;
        let ns = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }

    /// Bytes delivered so far: (to the server, to the clients).
    #[allow(dead_code)] // for the tests' exactness checks
    pub(crate) fn bytes(&self) -> (u64, u64) {
        (
            self.counters.to_server.load(Ordering::Relaxed),
            self.counters.to_client.load(Ordering::Relaxed),
        )
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One stretch of bytes read, or the EOF after the last, and when it may go.
struct Chunk {
    due: Instant,
    /// Empty for EOF.
    bytes: Vec<u8>,
    /// How much of `bytes` is written already.
    sent: usize,
}

/// One direction of a connection: read from socket `from`, written to the other.
struct Direction {
    queue: VecDeque<Chunk>,
    /// Bytes in `queue` not yet written.
    held: usize,
    /// The capped link is busy until then.
    link_free: Instant,
    eof_read: bool,
    eof_sent: bool,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            queue: VecDeque::new(),
            held: 0,
            link_free: Instant::now(),
            eof_read: false,
            eof_sent: false,
        }
    }

    /// When `len` bytes read now arrive at the far end.
    fn arrival(&mut self, len: usize, shape: &Shape, now: Instant) -> Instant {
        match shape.bytes_per_sec() {
            None => now + shape.one_way,
            Some(rate) => {
                let start = self.link_free.max(now);
                self.link_free = start + Duration::from_secs_f64(len as f64 / rate);
                self.link_free + shape.one_way
            }
        }
    }
}

/// A client and its server connection: socket 0 is the client's, 1 the
/// server's; direction `d` reads socket `d` and writes socket `1 - d`.
struct Pair {
    socks: [TcpStream; 2],
    readable: [bool; 2],
    writable: [bool; 2],
    dirs: [Direction; 2],
}

enum Step {
    Progress,
    Idle,
    /// An error, or both directions finished: close both sockets.
    Done,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

impl Pair {
    /// Reads what may be read and writes what is due, once over.
    fn pump(&mut self, shape: &Shape, buf: &mut [u8], counters: &Counters) -> Step {
        let mut progress = false;
        let limit = shape.queue_limit();
        for d in 0..2 {
            let now = Instant::now();
            let dir = &mut self.dirs[d];
            let w = 1 - d;
            let counter = match d {
                0 => &counters.to_server,
                _ => &counters.to_client,
            };
            while self.readable[d] && !dir.eof_read && dir.held < limit {
                match self.socks[d].read(buf) {
                    Ok(0) => {
                        let due = dir.arrival(0, shape, now);
                        dir.queue.push_back(Chunk {
                            due,
                            bytes: Vec::new(),
                            sent: 0,
                        });
                        dir.eof_read = true;
                        progress = true;
                    }
                    Ok(n) => {
                        let due = dir.arrival(n, shape, now);
                        let mut sent = 0;
                        if dir.queue.is_empty() && due <= now && self.writable[w] {
                            // No delay and nothing ahead: straight from the
                            // read buffer, saving a copy at loopback rates.
                            match self.socks[w].write(&buf[..n]) {
                                Ok(k) => sent = k,
                                Err(e) if would_block(&e) => self.writable[w] = false,
                                Err(e) if interrupted(&e) => {}
                                Err(_) => return Step::Done,
                            }
                            counter.fetch_add(sent as u64, Ordering::Relaxed);
                        }
                        if sent < n {
                            dir.queue.push_back(Chunk {
                                due,
                                bytes: buf[sent..n].to_vec(),
                                sent: 0,
                            });
                            dir.held += n - sent;
                        }
                        progress = true;
                    }
                    Err(e) if would_block(&e) => self.readable[d] = false,
                    Err(e) if interrupted(&e) => {}
                    Err(_) => return Step::Done,
                }
            }
            while self.writable[w] {
                let now = Instant::now();
                let due: Vec<IoSlice<'_>> = dir
                    .queue
                    .iter()
                    .take_while(|c| c.due <= now && !c.bytes.is_empty())
                    .take(WRITE_SLICES)
                    .map(|c| IoSlice::new(&c.bytes[c.sent..]))
                    .collect();
                if due.is_empty() {
                    match dir.queue.front() {
                        Some(c) if c.due <= now && c.bytes.is_empty() => {
                            // EOF, every byte before it written.
                            let _ = self.socks[w].shutdown(Shutdown::Write);
                            dir.queue.pop_front();
                            dir.eof_sent = true;
                            progress = true;
                        }
                        _ => {}
                    }
                    break;
                }
                match self.socks[w].write_vectored(&due) {
                    Ok(0) => return Step::Done,
                    Ok(mut n) => {
                        drop(due);
                        counter.fetch_add(n as u64, Ordering::Relaxed);
                        dir.held -= n;
                        progress = true;
                        while n > 0 {
                            let Some(front) = dir.queue.front_mut() else {
                                break;
                            };
                            let left = front.bytes.len() - front.sent;
                            if n >= left {
                                n -= left;
                                dir.queue.pop_front();
                            } else {
                                front.sent += n;
                                n = 0;
                            }
                        }
                    }
                    Err(e) if would_block(&e) => self.writable[w] = false,
                    Err(e) if interrupted(&e) => {}
                    Err(_) => return Step::Done,
                }
            }
        }
        if self.dirs.iter().all(|d| d.eof_sent) {
            Step::Done
        } else if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    }

    /// The earliest moment a chunk waiting only for its time is due: maybe
    /// already past, when it fell due since the last pump.
    fn next_due(&self) -> Option<Instant> {
        (0..2)
            .filter(|&d| self.writable[1 - d])
            .filter_map(|d| self.dirs[d].queue.front().map(|c| c.due))
            .min()
    }
}

struct Loop {
    poll: Poll,
    listener: TcpListener,
    upstream: u16,
    shape: Shape,
    stop: Arc<AtomicBool>,
    /// By pair number; socket `s` of pair `p` is `Token(2 * p + s)`.
    pairs: HashMap<usize, Pair>,
    next: usize,
    buf: Vec<u8>,
    counters: Arc<Counters>,
}

impl Loop {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let timeout = self
                .pairs
                .values()
                .filter_map(Pair::next_due)
                .min()
                .map(|due| match due.checked_duration_since(now) {
                    // epoll counts whole milliseconds: round up, never spin early.
                    Some(wait) if !wait.is_zero() => wait + Duration::from_micros(999),
                    _ => Duration::ZERO,
                });
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(e),
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept()?,
                    WAKER => {}
                    Token(t) => {
                        if let Some(pair) = self.pairs.get_mut(&(t / 2)) {
                            let s = t % 2;
                            let broken = event.is_error();
                            if event.is_readable() || event.is_read_closed() || broken {
                                pair.readable[s] = true;
                            }
                            if event.is_writable() || event.is_write_closed() || broken {
                                pair.writable[s] = true;
                            }
                        }
                    }
                }
            }
            let (shape, buf, counters) = (&self.shape, &mut self.buf, &*self.counters);
            let mut done = Vec::new();
            for (&id, pair) in self.pairs.iter_mut() {
                loop {
                    match pair.pump(shape, buf, counters) {
                        Step::Progress => {}
                        Step::Idle => break,
                        Step::Done => {
                            done.push(id);
                            break;
                        }
                    }
                }
            }
            for id in done {
                if let Some(mut pair) = self.pairs.remove(&id) {
                    for sock in &mut pair.socks {
                        let _ = self.poll.registry().deregister(sock);
                    }
                }
            }
        }
    }

    /// Accepts every waiting client and connects each to the server; a
    /// client whose server connection fails is closed at once.
    fn accept(&mut self) -> io::Result<()> {
        loop {
            let (client, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(e),
            };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", self.upstream)) else {
                continue;
            };
            if server.set_nonblocking(true).is_err() {
                continue;
            }
            let mut socks = [client, TcpStream::from_std(server)];
            let id = self.next;
            self.next += 1;
            let mut registered = true;
            for (s, sock) in socks.iter_mut().enumerate() {
                let _ = sock.set_nodelay(true);
                registered &= self
                    .poll
                    .registry()
                    .register(
                        sock,
                        Token(2 * id + s),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_ok();
            }
            if registered {
                self.pairs.insert(
                    id,
                    Pair {
                        socks,
                        readable: [false; 2],
                        writable: [false; 2],
                        dirs: [Direction::new(), Direction::new()],
                    },
                );
            }
        }
    }
}
