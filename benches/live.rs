//! Live sync (issue 14): the change rate `rump --live` can follow on this
//! machine, and the lag at a steady rate.
//!
//! On a throwaway source and target `redis-server` (the e2e harness's
//! `Lab`), the source gets `notify-keyspace-events KA` and `--preload`
//! keys; the release `rump --live` copies them and then follows changes.
//! Each step, a writer thread writes `SET`/`HSET` on random keys of a
//! `--keyspace` at a fixed rate (paced per millisecond, pipelined) for
//! `--seconds`, and every 10 ms also `SET probe:<step> <n>`; a poller
//! thread `GET`s it on the target every millisecond. A probe's lag is from
//! just before its write was sent to the first poll that sees it (or a
//! later one) on the target: end to end, through the source, its
//! notification, rump and the target. After the writer stops, the step
//! waits for the last probe: the drain time says how much was still
//! pending. The target's `RESTORE` and `DEL` calls (`INFO commandstats`)
//! over the step are what rump applied; fewer than written means changes
//! to the same key were coalesced, not lost (the end check says so).
//!
//! At the end rump is stopped with SIGINT and the target is checked
//! against the source: same DBSIZE, and a sample of keys equal by DUMP.
//!
//! `nice cargo bench --bench live` runs it; `-- --help` lists the options.

#[allow(dead_code)] // shared with benches/e2e.rs, which uses more of it
#[path = "e2e/procfs.rs"]
mod procfs;
#[allow(dead_code)] // shared with benches/e2e.rs, which uses more of it
#[path = "e2e/redis.rs"]
mod redis;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::{Batcher, Conn, Lab, Res};
use resp::Frame;
use rump::progress::group;

const HELP: &str = "\
live: the change rate rump --live follows, and its lag (see BENCHMARKS.md, \"Live sync\")

usage: nice cargo bench --bench live -- [OPTIONS]

options:
  --rates LIST         writes/s of each ramp step
                       (default 5000,10000,20000,50000,100000,150000,200000)
  --seconds S          length of each ramp step (default 4)
  --steady N           writes/s of the lag measurement (default 10000)
  --steady-seconds S   its length (default 20)
  --keyspace N         the writer's random keys are among N (default 200000)
  --preload N          keys in the source before rump starts (default 100000)
  --redis-server PATH  server binary (default $REDIS_SERVER or redis-server)
  -h, --help           this text
";

/// How often the writer sends a probe.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How often the poller reads the probe on the target.
const POLL_EVERY: Duration = Duration::from_millis(1);
/// How long a step waits for its last probe after the writer stops.
const DRAIN_WITHIN: Duration = Duration::from_secs(60);
/// Keys compared by DUMP at the end.
const SAMPLE: usize = 2000;

struct Config {
    rates: Vec<u64>,
    seconds: f64,
    steady: u64,
    steady_seconds: f64,
    keyspace: u64,
    preload: u64,
    redis_server: PathBuf,
}

fn parse_args(args: Vec<String>) -> Res<Option<Config>> {
    let mut config = Config {
        rates: vec![5_000, 10_000, 20_000, 50_000, 100_000, 150_000, 200_000],
        seconds: 4.0,
        steady: 10_000,
        steady_seconds: 20.0,
        keyspace: 200_000,
        preload: 100_000,
        redis_server: std::env::var_os("REDIS_SERVER")
            .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let count = |v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name}: {v:?} is not a positive count"))
        };
        let seconds = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("{name}: {v:?} is not a positive number of seconds"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            "--rates" => {
                config.rates = value()?
                    .split(',')
                    .map(|r| count(r.to_owned()))
                    .collect::<Res<_>>()?;
            }
            "--seconds" => config.seconds = seconds(value()?)?,
            "--steady" => config.steady = count(value()?)?,
            "--steady-seconds" => config.steady_seconds = seconds(value()?)?,
            "--keyspace" => config.keyspace = count(value()?)?,
            "--preload" => config.preload = count(value()?)?,
            "--redis-server" => config.redis_server = PathBuf::from(value()?),
            _ => return Err(format!("unknown option {arg:?}")),
        }
    }
    Ok(Some(config))
}

fn main() {
    let config = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(e) => {
            eprintln!("live: {e} (see --help)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&config) {
        eprintln!("live: {e}");
        std::process::exit(1);
    }
}

/// What one step measured.
struct Step {
    rate: u64,
    seconds: f64,
    written: u64,
    applied: u64,
    lags: Vec<Duration>,
    probes: u64,
    drain: Duration,
    /// CPU used over the step, in cores: rump, the source, the target.
    cpu: [f64; 3],
}

impl Step {
    fn percentile(&self, p: f64) -> Duration {
        if self.lags.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.lags.len() as f64 - 1.0) * p).round() as usize;
        self.lags[at.min(self.lags.len() - 1)]
    }
}

fn run(config: &Config) -> Res<()> {
    let rump = PathBuf::from(env!("CARGO_BIN_EXE_rump"));
    let lab = Lab::start(&config.redis_server)?;
    let mut src = lab.source.conn()?;
    src.call_ok(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KA"])?;
    let n = config.preload.to_string();
    src.call_ok(&[b"DEBUG", b"POPULATE", n.as_bytes(), b"key", b"16"])?;
    eprintln!("live: {} keys preloaded", group(src.dbsize()?));

    let mut live = Live::start(&rump, &lab.source.url(), &lab.target.url())?;
    let scan = Instant::now();
    live.wait_for("the scan is complete", Duration::from_secs(300))?;
    eprintln!(
        "live: scan complete in {:.1} s; ramp",
        scan.elapsed().as_secs_f64()
    );

    let mut ramp = Vec::new();
    let pids = [live.child.id(), lab.source.pid(), lab.target.pid()];
    for (index, &rate) in config.rates.iter().enumerate() {
        let step = step(&lab, config, pids, index, rate, config.seconds)?;
        eprintln!(
            "live: {rate}/s: wrote {}/s, p99 lag {}, drain {}",
            group((step.written as f64 / step.seconds) as u64),
            ms(step.percentile(0.99)),
            ms(step.drain)
        );
        ramp.push(step);
    }
    let steady = step(
        &lab,
        config,
        pids,
        config.rates.len(),
        config.steady,
        config.steady_seconds,
    )?;

    live.stop()?;
    let json = live.json();
    let check = verify(&lab)?;
    print_tables(&ramp, &steady, &json, &check);
    Ok(())
}

/// A `rump --live` child, its stderr read as it runs.
struct Live {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: String,
}

impl Live {
    fn start(rump: &Path, from: &str, to: &str) -> Res<Live> {
        let mut child = Command::new(rump)
            .args(["-from", from, "-to", to, "--live", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", rump.display()))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().ok_or("no stderr pipe")?;
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut l) = lines.lock() {
                    l.push(line);
                }
            }
        });
        Ok(Live {
            child,
            stderr,
            stdout: String::new(),
        })
    }

    fn said(&self, needle: &str) -> bool {
        self.stderr
            .lock()
            .map(|l| l.iter().any(|line| line.contains(needle)))
            .unwrap_or(false)
    }

    fn wait_for(&mut self, needle: &str, within: Duration) -> Res<()> {
        let deadline = Instant::now() + within;
        while !self.said(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("rump exited ({status}): {}", self.stderr_text()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "rump never said {needle:?}: {}",
                    self.stderr_text()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGINT, then the exit (0 is the normal end of a live sync).
    fn stop(&mut self) -> Res<()> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        let mut out = self.child.stdout.take().ok_or("no stdout pipe")?;
        std::io::Read::read_to_string(&mut out, &mut self.stdout)
            .map_err(|e| format!("rump's stdout: {e}"))?;
        let status = self.child.wait().map_err(|e| format!("wait: {e}"))?;
        if !status.success() {
            return Err(format!("rump exited {status}: {}", self.stderr_text()));
        }
        Ok(())
    }

    fn json(&self) -> String {
        self.stdout
            .lines()
            .rfind(|l| l.starts_with('{'))
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One step: the writer at `rate` for `seconds`, the poller, then the wait
/// for the last probe.
/// Each step has a probe key of its own (`probe:<index>`): one left on the
/// target by the step before would be seen at once.
fn step(
    lab: &Lab,
    config: &Config,
    pids: [u32; 3],
    index: usize,
    rate: u64,
    seconds: f64,
) -> Res<Step> {
    let key = format!("probe:{index}");
    let tck = procfs::clk_tck();
    let ticks: Vec<u64> = pids.iter().map(|&p| procfs::ticks(&[p])).collect();
    let mut tgt = lab.target.conn()?;
    tgt.call_ok(&[b"CONFIG", b"RESETSTAT"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let conn = lab.target.conn()?;
        let stop = Arc::clone(&stop);
        let key = key.clone();
        thread::spawn(move || poll_probe(conn, &key, &stop))
    };
    let start = Instant::now();
    let (written, sent) = write_at(lab.source.conn()?, &key, rate, seconds, config.keyspace)?;
    let wrote_for = start.elapsed();
    let last = sent.len() as u64;
    // Wait for the last probe, then stop the poller.
    let deadline = Instant::now() + DRAIN_WITHIN;
    let mut probe = lab.target.conn()?;
    while probe_value(&mut probe, &key)? < last && Instant::now() < deadline {
        thread::sleep(POLL_EVERY);
    }
    stop.store(true, Ordering::SeqCst);
    let seen = poller
        .join()
        .map_err(|_| "the poller panicked".to_owned())??;
    let applied = calls(&mut tgt, "restore")? + calls(&mut tgt, "del")?;
    let busy = start.elapsed().as_secs_f64() * tck;
    let mut cpu = [0.0; 3];
    for (i, &pid) in pids.iter().enumerate() {
        cpu[i] = procfs::ticks(&[pid]).saturating_sub(ticks[i]) as f64 / busy;
    }
    let mut lags = Vec::with_capacity(sent.len());
    let mut drain = Duration::ZERO;
    for (i, at) in sent.iter().enumerate() {
        let n = i as u64 + 1;
        // The first poll that saw probe n or a later one.
        let Some(&(_, arrived)) = seen.iter().find(|(v, _)| *v >= n) else {
            continue;
        };
        let lag = arrived.saturating_duration_since(*at);
        lags.push(lag);
        if n == last {
            // Sent as the writer stopped: what was still pending then.
            drain = lag;
        }
    }
    lags.sort_unstable();
    Ok(Step {
        rate,
        seconds: wrote_for.as_secs_f64(),
        written,
        applied,
        probes: last,
        lags,
        drain,
        cpu,
    })
}

/// Writes `SET`/`HSET` on random keys at `rate` for `seconds`, pipelined per
/// millisecond, with a probe every [`PROBE_EVERY`] and one as it stops;
/// returns the writes made and when each probe was sent.
fn write_at(
    mut conn: Conn,
    probe: &str,
    rate: u64,
    seconds: f64,
    keyspace: u64,
) -> Res<(u64, Vec<Instant>)> {
    let mut x = rate.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut random = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut written = 0u64;
    let mut probes = Vec::new();
    let mut next_probe = start;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = (now.duration_since(start).as_secs_f64() * rate as f64) as u64;
        let mut batch = Batcher::new(usize::MAX, usize::MAX);
        let mut count = 0;
        while written + count < due {
            let r = random() % keyspace;
            if r % 2 == 0 {
                batch.command(&[b"SET", format!("w:{r}").as_bytes(), b"value"]);
            } else {
                let field = (random() % 8).to_string();
                batch.command(&[b"HSET", format!("h:{r}").as_bytes(), field.as_bytes(), b"v"]);
            }
            count += 1;
        }
        if now >= next_probe {
            probes.push(now);
            let n = probes.len().to_string();
            batch.command(&[b"SET", probe.as_bytes(), n.as_bytes()]);
            next_probe += PROBE_EVERY;
        }
        for b in batch.finish() {
            conn.send_batch(b)?;
        }
        written += count;
        thread::sleep(Duration::from_millis(1));
    }
    // A last probe as the writer stops: its arrival ends the drain.
    probes.push(Instant::now());
    let n = probes.len().to_string();
    conn.call_ok(&[b"SET", probe.as_bytes(), n.as_bytes()])?;
    Ok((written, probes))
}

/// Reads the probe `key` on the target every [`POLL_EVERY`] until `stop`; each time
/// it grew, its value and when it was seen.
fn poll_probe(mut conn: Conn, key: &str, stop: &AtomicBool) -> Res<Vec<(u64, Instant)>> {
    let mut seen = Vec::new();
    let mut last = 0;
    loop {
        // Checked before the read, so the read after the stop sees the
        // last probe the stopper saw.
        let stopping = stop.load(Ordering::SeqCst);
        let n = probe_value(&mut conn, key)?;
        if n > last {
            last = n;
            seen.push((n, Instant::now()));
        }
        if stopping {
            return Ok(seen);
        }
        thread::sleep(POLL_EVERY);
    }
}

fn probe_value(conn: &mut Conn, key: &str) -> Res<u64> {
    Ok(match conn.call_ok(&[b"GET", key.as_bytes()])? {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).parse().unwrap_or(0),
        _ => 0,
    })
}

/// `INFO commandstats` calls of `command` since the last `CONFIG RESETSTAT`.
fn calls(conn: &mut Conn, command: &str) -> Res<u64> {
    let stats = conn.call_ok(&[b"INFO", b"commandstats"])?;
    let text = stats
        .as_bulk()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let prefix = format!("cmdstat_{command}:calls=");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// The end check: DBSIZE on both ends, and how many of a sample of source
/// keys have the same DUMP on the target.
struct Check {
    source_keys: u64,
    target_keys: u64,
    sampled: usize,
    equal: usize,
}

fn verify(lab: &Lab) -> Res<Check> {
    let mut src = lab.source.conn()?;
    let mut tgt = lab.target.conn()?;
    let keys: Vec<Bytes> = src
        .scan_all()?
        .into_iter()
        .step_by(((src.dbsize()? as usize) / SAMPLE).max(1))
        .take(SAMPLE)
        .collect();
    let ours = src.dumps(&keys)?;
    let theirs = tgt.dumps(&keys)?;
    let equal = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    Ok(Check {
        source_keys: src.dbsize()?,
        target_keys: tgt.dbsize()?,
        sampled: keys.len(),
        equal,
    })
}

fn print_tables(ramp: &[Step], steady: &Step, json: &str, check: &Check) {
    println!(
        "| asked writes/s | written/s | applied/s | p50 lag | p99 lag | max lag | drain after stop \
         | CPU rump / source / target |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in ramp.iter().chain(std::iter::once(steady)) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0}% / {:.0}% / {:.0}% |",
            group(s.rate),
            group((s.written as f64 / s.seconds) as u64),
            group((s.applied as f64 / s.seconds) as u64),
            ms(s.percentile(0.5)),
            ms(s.percentile(0.99)),
            ms(s.lags.last().copied().unwrap_or_default()),
            ms(s.drain),
            s.cpu[0] * 100.0,
            s.cpu[1] * 100.0,
            s.cpu[2] * 100.0,
        );
    }
    println!();
    println!(
        "steady {}/s for {:.0} s: {} probes, {} arrived, p50 {}, p99 {}, max {}",
        group(steady.rate),
        steady.seconds,
        steady.probes,
        steady.lags.len(),
        ms(steady.percentile(0.5)),
        ms(steady.percentile(0.99)),
        ms(steady.lags.last().copied().unwrap_or_default())
    );
    println!(
        "end check: source {} keys, target {} keys; {} of {} sampled keys equal by DUMP",
        group(check.source_keys),
        group(check.target_keys),
        check.equal,
        check.sampled
    );
    println!("rump: {json}");
}

/// `1.2 ms`: a lag or a drain time.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
