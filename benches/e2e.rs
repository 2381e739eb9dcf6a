//! End-to-end benchmark of `rump` against the machine's own ceiling and any
//! other migration tool (issue 5). `BENCHMARKS.md` explains the method and the
//! columns; `cargo bench --bench e2e -- --help` lists the options.
//!
//! Per dataset: start-of-run `FLUSHALL`, load the source, `SCAN` and `DUMP`
//! every key (untimed), measure the source and target ceilings, then run each
//! tool `--reps` times, alternating tools, each on a flushed target, measuring
//! wall time, CPU, peak RSS and the servers' CPU, and check the target after
//! every run. `--topology` makes either end a 3-master Redis Cluster
//! (issue 9); each topology listed gets its own servers, one after the other.
//! `--tls plain,tls` (issue 10) measures both modes on the same servers and
//! data: ceilings per mode, and in every repetition each tool runs once per
//! mode, in turn (`benches/e2e/tls.rs`). `--rtt-ms direct,0,20,80` (issue
//! 12) puts a latency proxy of the harness's own in front of the source and
//! of the target for each round trip listed, measures the ceilings through
//! them, and runs every tool once per round trip in every repetition
//! (`benches/e2e/wan.rs`).

#[path = "e2e/ceiling.rs"]
mod ceiling;
#[path = "e2e/data.rs"]
mod data;
#[path = "e2e/procfs.rs"]
mod procfs;
#[path = "e2e/proxy.rs"]
mod proxy;
#[path = "e2e/redis.rs"]
mod redis;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/topology.rs"]
mod topology;
#[path = "e2e/transcode.rs"]
mod transcode;
#[path = "e2e/verify.rs"]
mod verify;
#[path = "e2e/wan.rs"]
mod wan;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ceiling::{Probe, Rate};
use data::{Dataset, Size};
use redis::tls::Mode;
use redis::Res;
use report::{DatasetResult, Meta, Run, Servers};
use topology::{Binaries, Lab, Nodes, Side, Topology};
use transcode::TypeRate;
use wan::{Rtt, Wan};

const HELP: &str = "\
e2e: end-to-end benchmark of rump (see BENCHMARKS.md)

usage: cargo bench --bench e2e -- [OPTIONS]

Starts a throwaway source and target redis-server, loads each dataset into the
source, measures the source and target ceilings, runs rump (and any --peer)
--reps times each on a flushed target, checks the target after every run, prints
Markdown tables and writes JSON to bench-results/e2e-<timestamp>.json.

options:
  --dataset LIST       comma-separated: small, mixed, big (default: all three)
  --scale F            scale every dataset's key count by F (default 1)
  --keys N             key count of `small` (overrides --scale for it), e.g. 10000000
  --reps N             repetitions of every tool (default 3)
  --quick              smoke run: --scale 0.01 --reps 1 (later options still apply)
  --peer NAME=CMD      also run CMD through `sh -c`, alternating with rump; CMD may use
                       {from} {to} (redis:// URLs; rediss:// in TLS mode), {from_host}
                       {from_port} {to_host} {to_port} (the TLS ports in TLS mode),
                       {ca} (the CA file in a run with TLS); repeatable
  --rump-args 'ARGS'   extra arguments for rump, split on whitespace
                       (e.g. '--pipeline 512 --scan-count 1000')
  --rump PATH          the rump binary (default: the one cargo just built)
  --no-rump            run only the peers (and ceilings)
  --verify             also run `rump --verify-only` right after each rump copy, on the
                       target it just filled (its keys/s against the copy's, same rep)
  --no-ceilings        skip the ceiling measurements (saves memory on huge --keys runs)
  --sample N           keys compared value by value after each run (default 1000)
  --topology LIST      comma-separated, each run in turn with its own servers:
                       standalone (default), cluster-target (standalone source,
                       3-master cluster target), cluster (3-master cluster on both ends)
  --tls LIST           comma-separated modes, each run on the same servers and data:
                       plain (default), tls (every server also gets a TLS port with a
                       certificate from a CA the harness makes; rump gets rediss:// URLs
                       and --tls-ca), both (= plain,tls)
  --rtt-ms LIST        comma-separated round trips, each `direct` (no proxy) or a number
                       of ms: a latency proxy of the harness's own in front of the source
                       and one in front of the target add it (half each way); the
                       ceilings, rump and the peers go through them ({from} {to} name
                       the proxies), loading and checking go direct; every repetition
                       runs each round trip in turn (default: direct; standalone only)
  --mbit N             also cap each proxy at N Mbit/s each way (needs --rtt-ms numbers)
  --window-kib N       also let each proxied connection hold at most N KiB in flight each
                       way, as a TCP connection's largest socket buffer does (4096 is
                       Debian's tcp_wmem maximum; needs --rtt-ms numbers)
  --redis-server PATH  server binary of both ends (default redis-server; a valkey-server works)
  --source-server LIST comma-separated server binaries of the source (default --redis-server):
                       each gets its own source server with the same data, and every
                       repetition copies from each in turn into the same target, so a
                       cross-version copy alternates with a same-version one (issue 11)
  --target-server PATH server binary of the target (default --redis-server)
  --redis-cli PATH     creates the clusters (default redis-cli; valkey-cli works)
  --out PATH           JSON output path (default bench-results/e2e-<timestamp>.json)
  -h, --help           this text
";

struct Peer {
    name: String,
    template: String,
}

struct Config {
    datasets: Vec<Dataset>,
    size: Size,
    reps: usize,
    peers: Vec<Peer>,
    rump: Option<PathBuf>,
    rump_args: Vec<String>,
    /// Also time `rump --verify-only` after each copy.
    verify: bool,
    ceilings: bool,
    sample: usize,
    /// One source server per binary, all loaded with the same data.
    source_servers: Vec<PathBuf>,
    target_server: PathBuf,
    redis_cli: PathBuf,
    topologies: Vec<Topology>,
    modes: Vec<Mode>,
    /// Round trips, each run in turn within every repetition.
    rtts: Vec<Rtt>,
    /// Bandwidth cap of every proxy, each way.
    mbit: Option<f64>,
    /// `--window-kib`: per-connection bytes in flight through a proxy.
    window_kib: Option<usize>,
    out: Option<PathBuf>,
    args: Vec<String>,
}

fn number<T: std::str::FromStr>(option: &str, value: &str) -> Res<T> {
    value
        .parse()
        .map_err(|_| format!("{option}: {value:?} is not a valid number"))
}

/// A comma-separated list, empty items skipped.
fn list<T>(value: &str, parse: impl Fn(&str) -> Res<T>) -> Res<Vec<T>> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
}

/// `Ok(None)` for `--help`.
fn parse_args(args: Vec<String>) -> Res<Option<Config>> {
    let mut config = Config {
        datasets: Dataset::ALL.to_vec(),
        size: Size {
            scale: 1.0,
            small_keys: None,
        },
        reps: 3,
        peers: Vec::new(),
        rump: Some(PathBuf::from(env!("CARGO_BIN_EXE_rump"))),
        rump_args: Vec::new(),
        verify: false,
        ceilings: true,
        sample: 1000,
        source_servers: Vec::new(),
        target_server: PathBuf::new(),
        redis_cli: PathBuf::from("redis-cli"),
        topologies: vec![Topology::Standalone],
        modes: vec![Mode::Plain],
        rtts: vec![Rtt::Direct],
        mbit: None,
        window_kib: None,
        out: None,
        args: args.clone(),
    };
    let mut redis_server = PathBuf::from("redis-server");
    let mut target_server = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bench" => {} // cargo bench passes it to harness = false targets
            "--quick" => {
                config.size.scale = 0.01;
                config.reps = 1;
            }
            "--dataset" | "--datasets" => config.datasets = list(&value()?, Dataset::parse)?,
            "--scale" => config.size.scale = number(&name, &value()?)?,
            "--keys" => config.size.small_keys = Some(number(&name, &value()?)?),
            "--reps" => config.reps = number::<usize>(&name, &value()?)?.max(1),
            "--sample" => config.sample = number(&name, &value()?)?,
            "--peer" => {
                let spec = value()?;
                let (peer, template) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--peer {spec:?}: expected NAME=COMMAND"))?;
                if peer == "rump" || peer.is_empty() {
                    return Err(format!("--peer {spec:?}: choose a name other than rump"));
                }
                config.peers.push(Peer {
                    name: peer.to_owned(),
                    template: template.to_owned(),
                });
            }
            "--rump-args" => {
                config.rump_args = value()?.split_whitespace().map(str::to_owned).collect();
            }
            "--rump" => config.rump = Some(PathBuf::from(value()?)),
            "--no-rump" => config.rump = None,
            "--verify" => config.verify = true,
            "--no-ceilings" => config.ceilings = false,
            "--redis-server" => redis_server = PathBuf::from(value()?),
            "--source-server" | "--source-servers" => {
                config.source_servers = list(&value()?, |p| Ok(PathBuf::from(p)))?;
            }
            "--target-server" => target_server = Some(PathBuf::from(value()?)),
            "--redis-cli" => config.redis_cli = PathBuf::from(value()?),
            "--topology" | "--topologies" => {
                config.topologies = list(&value()?, Topology::parse)?;
            }
            "--tls" => {
                config.modes = Vec::new();
                for mode in list(&value()?, Mode::parse)?.into_iter().flatten() {
                    if !config.modes.contains(&mode) {
                        config.modes.push(mode);
                    }
                }
            }
            "--rtt-ms" => {
                config.rtts = Vec::new();
                for rtt in list(&value()?, Rtt::parse)? {
                    if !config.rtts.contains(&rtt) {
                        config.rtts.push(rtt);
                    }
                }
            }
            "--mbit" => config.mbit = Some(number(&name, &value()?)?),
            "--window-kib" => config.window_kib = Some(number(&name, &value()?)?),
            "--out" => config.out = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if config.source_servers.is_empty() {
        config.source_servers = vec![redis_server.clone()];
    }
    config.target_server = target_server.unwrap_or(redis_server);
    if config.datasets.is_empty() {
        return Err("--dataset: no dataset named".to_owned());
    }
    if config.topologies.is_empty() {
        return Err("--topology: no topology named".to_owned());
    }
    if config.modes.is_empty() {
        return Err("--tls: no mode named".to_owned());
    }
    if config.rtts.is_empty() {
        return Err("--rtt-ms: no round trip named".to_owned());
    }
    let proxied = config.rtts.iter().any(|r| r.ms().is_some());
    if proxied && config.topologies.iter().any(|&t| t != Topology::Standalone) {
        return Err(
            "--rtt-ms: a cluster's clients reach its other masters directly, around the proxy: use --topology standalone"
                .to_owned(),
        );
    }
    match config.mbit {
        Some(m) if !(m > 0.0 && m.is_finite()) => {
            return Err("--mbit must be a positive number".to_owned());
        }
        Some(_) if !proxied => return Err("--mbit needs a number in --rtt-ms".to_owned()),
        _ => {}
    }
    if config.window_kib.is_some() && !proxied {
        return Err("--window-kib needs a number in --rtt-ms".to_owned());
    }

    if config.size.scale <= 0.0 || !config.size.scale.is_finite() {
        return Err("--scale must be a positive number".to_owned());
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
            eprintln!("e2e: {e} (see --help)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&config) {
        eprintln!("e2e: {e}");
        std::process::exit(1);
    }
}

fn run(config: &Config) -> Res<()> {
    let tck = procfs::clk_tck();
    let (date, stamp) = utc_now();
    let tls = config.modes.contains(&Mode::Tls);
    let mut meta = None;
    let mut results = Vec::new();
    let bins = Binaries {
        sources: &config.source_servers,
        target: &config.target_server,
        cli: &config.redis_cli,
    };
    for &topology in &config.topologies {
        eprintln!("e2e: starting the servers ({})", topology.arrow());
        let lab = Lab::start(&bins, topology, tls)?;
        // Untimed work (loading, SCAN, DUMP) goes through the plain ports.
        let mut srcs = lab
            .sources
            .iter()
            .map(Side::nodes)
            .collect::<Res<Vec<_>>>()?;
        let mut ends = Vec::new();
        for &mode in &config.modes {
            for (source, side) in lab.sources.iter().enumerate() {
                for &rtt in &config.rtts {
                    let wan = match rtt.ms() {
                        Some(ms) => Some(Wan::start(
                            &lab,
                            source,
                            mode,
                            ms,
                            config.mbit,
                            config.window_kib.map(|k| k * 1024),
                        )?),
                        None => None,
                    };
                    ends.push(End {
                        mode,
                        source,
                        rtt,
                        wan,
                        src: side.nodes_in(mode)?,
                        tgt: lab.target.nodes_in(mode)?,
                    });
                }
            }
        }
        if ends.iter().any(|end| end.wan.is_some()) {
            eprintln!(
                "e2e: latency mode, round trips {}{}: ceilings, tools and their {{from}} {{to}} go through the proxies; loading, flushing and checking go direct",
                config
                    .rtts
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                config
                    .mbit
                    .map_or(String::new(), |m| format!(", {m} Mbit/s each way"))
            );
        }
        if meta.is_none() {
            let negotiated = ends
                .iter_mut()
                .find_map(|end| end.src.first().tls_description());
            meta = Some(make_meta(
                config,
                srcs[0].first(),
                date.clone(),
                tck,
                negotiated,
            )?);
        }
        let mut tgt = lab.target.nodes()?;
        let target = product(tgt.first())?;
        let ctx = LabContext {
            servers: srcs
                .iter_mut()
                .map(|src| {
                    Ok(Servers {
                        source: product(src.first())?,
                        target: target.clone(),
                    })
                })
                .collect::<Res<_>>()?,
            expiry: srcs
                .iter_mut()
                .map(|src| ceiling::expiry_command(src.first()))
                .collect::<Res<_>>()?,
            target_rdb: transcode::rdb_version(tgt.first())?,
        };
        for (side, servers) in lab.sources.iter().zip(&ctx.servers) {
            eprintln!(
                "e2e: source {} ({}), target {} ({}), CLK_TCK {tck}",
                side.describe(),
                servers.source,
                lab.target.describe(),
                servers.target,
            );
        }
        for &dataset in &config.datasets {
            results.extend(run_dataset(
                config, &lab, &ctx, topology, &mut srcs, &mut ends, dataset, tck,
            )?);
        }
    }
    let meta = meta.ok_or("no topology was run")?;

    println!("{}", report::markdown(&meta, &results));
    let path = config.out.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench-results")
            .join(format!("e2e-{stamp}.json"))
    });
    report::write_json(&path, &meta, &results)?;
    eprintln!("e2e: wrote {}", path.display());
    Ok(())
}

/// "redis 7.0.15" or "valkey 8.1.8", from `INFO server`.
fn product(conn: &mut redis::Conn) -> Res<String> {
    Ok(match conn.info_field("server", "valkey_version") {
        Ok(v) => format!("valkey {v}"),
        Err(_) => format!("redis {}", conn.info_field("server", "redis_version")?),
    })
}

/// What is known of a lab's servers, per source.
struct LabContext {
    servers: Vec<Servers>,
    /// The expiry read of each source (`PEXPIRETIME`, or `PTTL` before 7.0).
    expiry: Vec<&'static [u8]>,
    /// The newest payload version the target reads.
    target_rdb: Option<u16>,
}

/// The connections of one mode, one source and one round trip: the
/// flushes before each run and the check after it go through `src` and
/// `tgt`, the ceilings too unless there are proxies (`wan`).
struct End {
    mode: Mode,
    /// Which of the lab's sources.
    source: usize,
    rtt: Rtt,
    /// The latency proxies of `rtt`, and connections through them.
    wan: Option<Wan>,
    src: Nodes,
    tgt: Nodes,
}

/// Where a tool is pointed: the servers themselves or their proxies.
struct Addrs {
    from: String,
    to: String,
    from_port: u16,
    to_port: u16,
}

impl End {
    /// The connections the ceilings are measured through.
    fn measured(&mut self) -> (&mut Nodes, &mut Nodes) {
        match &mut self.wan {
            Some(wan) => (&mut wan.src, &mut wan.tgt),
            None => (&mut self.src, &mut self.tgt),
        }
    }

    /// CPU seconds of this end's proxies so far; `None` without proxies.
    fn proxy_cpu(&self) -> Option<f64> {
        self.wan.as_ref().map(Wan::cpu)
    }

    /// The addresses a tool gets: the lab's, or the proxies' in front of them.
    fn addrs(&self, lab: &Lab) -> Res<Addrs> {
        let source = &lab.sources[self.source];
        let Some(wan) = &self.wan else {
            return Ok(Addrs {
                from: source.url_in(self.mode)?,
                to: lab.target.url_in(self.mode)?,
                from_port: source.port_in(self.mode)?,
                to_port: lab.target.port_in(self.mode)?,
            });
        };
        let scheme = match self.mode {
            Mode::Plain => "redis",
            Mode::Tls => "rediss",
        };
        let (from_port, to_port) = (wan.from.port(), wan.to.port());
        Ok(Addrs {
            from: format!("{scheme}://127.0.0.1:{from_port}"),
            to: format!("{scheme}://127.0.0.1:{to_port}"),
            from_port,
            to_port,
        })
    }
}

fn make_meta(
    config: &Config,
    src: &mut redis::Conn,
    date: String,
    tck: f64,
    tls: Option<String>,
) -> Res<Meta> {
    let meta = Meta {
        date,
        commit: git_commit(),
        redis_version: match src.info_field("server", "valkey_version") {
            Ok(v) => format!("valkey_version {v}"),
            Err(_) => format!(
                "redis_version {}",
                src.info_field("server", "redis_version")?
            ),
        },
        server_binary: server_binaries(config),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        clk_tck: tck,
        rump_version: config.rump.as_deref().map_or("-".to_owned(), tool_version),
        args: config.args.clone(),
        reps: config.reps,
        scale: config.size.scale,
        modes: config.modes.clone(),
        mbit: config.mbit,
        tls,
    };
    eprintln!("e2e: {}, {} cores", meta.redis_version, meta.cores);
    if let Some(tls) = &meta.tls {
        eprintln!("e2e: the harness's TLS connections negotiated {tls}");
    }
    Ok(meta)
}

/// The binary of both ends, or of each source and the target.
fn server_binaries(config: &Config) -> String {
    let sources: Vec<String> = config
        .source_servers
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let target = config.target_server.display().to_string();
    match &sources[..] {
        [one] if *one == target => target,
        _ => format!("source {}; target {target}", sources.join(", ")),
    }
}

/// A tool to run: rump itself, rump comparing what it copied, or a
/// `--peer` template.
enum Tool<'a> {
    Rump(&'a Path),
    /// `rump --verify-only`, on the target the copy before it filled.
    Verify(&'a Path),
    Peer(&'a Peer),
}

/// The tool name of `rump --verify-only` in the tables.
const VERIFY_TOOL: &str = "rump --verify-only";

impl Tool<'_> {
    fn name(&self) -> &str {
        match self {
            Tool::Rump(_) => "rump",
            Tool::Verify(_) => VERIFY_TOOL,
            Tool::Peer(p) => &p.name,
        }
    }

    /// The command line in `mode`, from `addrs.from` to `addrs.to`; a
    /// cluster end is named by its first master. Over TLS rump trusts
    /// exactly the lab's CA.
    fn command(&self, lab: &Lab, addrs: &Addrs, mode: Mode, rump_args: &[String]) -> Res<Command> {
        let (from, to) = (&addrs.from, &addrs.to);
        let ca = lab
            .certs
            .as_ref()
            .map_or(String::new(), |c| c.ca.display().to_string());
        Ok(match self {
            Tool::Rump(bin) => {
                let mut cmd = Command::new(bin);
                cmd.args(["-from", from, "-to", to]);
                if mode == Mode::Tls {
                    cmd.args(["--tls-ca", &ca]);
                }
                cmd.args(["-silent", "--json"]).args(rump_args);
                cmd
            }
            Tool::Verify(bin) => {
                let mut cmd = Command::new(bin);
                cmd.args(["-from", from, "-to", to]);
                if mode == Mode::Tls {
                    cmd.args(["--tls-ca", &ca]);
                }
                cmd.args(["--verify-only", "-silent", "--json"])
                    .args(rump_args);
                cmd
            }
            Tool::Peer(peer) => {
                let script = peer
                    .template
                    .replace("{from}", from)
                    .replace("{to}", to)
                    .replace("{from_host}", "127.0.0.1")
                    .replace("{to_host}", "127.0.0.1")
                    .replace("{from_port}", &addrs.from_port.to_string())
                    .replace("{to_port}", &addrs.to_port.to_string())
                    .replace("{ca}", &ca);
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(script);
                cmd
            }
        })
    }
}

/// Loads `dataset` into every source, measures each end's ceilings, runs
/// every tool on every end (mode × source) `--reps` times and returns one
/// result per end.
#[allow(clippy::too_many_arguments)]
fn run_dataset(
    config: &Config,
    lab: &Lab,
    ctx: &LabContext,
    topology: Topology,
    srcs: &mut [Nodes],
    ends: &mut [End],
    dataset: Dataset,
    tck: f64,
) -> Res<Vec<DatasetResult>> {
    let name = match topology {
        Topology::Standalone => dataset.name().to_owned(),
        _ => format!("{} {}", dataset.name(), topology.name()),
    };
    let modes = config.modes.len();
    let several = srcs.len() > 1;
    let rtts = config.rtts != [Rtt::Direct];
    let tagged = |end: &End| {
        let mut tag = name.clone();
        if modes > 1 {
            tag = format!("{tag} {}", end.mode.name());
        }
        if several {
            tag = format!("{tag} {}", ctx.servers[end.source].arrow());
        }
        if rtts {
            tag = format!("{tag} rtt {}", end.rtt.name());
        }
        tag
    };
    for src in srcs.iter_mut() {
        src.flushall()?;
    }
    for end in ends.iter_mut() {
        end.tgt.flushall()?;
    }
    let probe = |side: &Side| Probe {
        pids: side.pids(),
        tck,
    };
    // Per source: what was loaded, and what its payloads weigh.
    let mut loaded = Vec::new();
    let mut ceilings: Vec<(Option<Rate>, Option<Rate>)> =
        ends.iter().map(|_| (None, None)).collect();
    for (i, src) in srcs.iter_mut().enumerate() {
        let side = &lab.sources[i];
        let label = format!("{name} {}", ctx.servers[i].source);
        eprintln!("[{label}] loading the source");
        let started = Instant::now();
        let description = data::load(dataset, src, config.size)?;
        let load_secs = started.elapsed().as_secs_f64();
        let source_keys = src.dbsizes()?;
        let keys: u64 = source_keys.iter().sum();
        eprintln!(
            "[{label}] {description}: {keys} keys in {load_secs:.1} s; SCAN + DUMP (untimed)"
        );
        let mut scanned = Vec::new();
        // Not part of any ceiling, but a migration pays it: worth knowing.
        let (scan_secs, scan_cpu) = probe(side).time(|| {
            scanned = src.each(vec![(); src.conns.len()], |conn, ()| conn.scan_all())?;
            Ok(())
        })?;
        let scan = (scan_secs, scan_cpu.iter().sum());
        let expiry = ctx.expiry[i];
        let mut rates = Vec::new();
        let (bytes, largest) = if config.ceilings {
            let dumped = src.each(scanned, ceiling::dump_all)?;
            let found = dumped.iter().map(|d| d.keys.len() as u64).sum();
            check_count(&label, found, keys)?;
            // What rump sends an older target, for its ceiling; the
            // rewriting timed per type.
            let rewritten = match ctx.target_rdb {
                Some(target) => transcode::for_target(&dumped, target)?,
                None => None,
            };
            let for_target = match rewritten {
                Some((payloads, by_type)) => {
                    for r in &by_type {
                        eprintln!(
                            "[{label}] transcoding {}: {} payloads, {:.1} MiB in {:.3} s: {:.0} MiB/s ({} footer only)",
                            r.name(),
                            r.payloads,
                            r.bytes as f64 / 1048576.0,
                            r.secs,
                            r.mib_per_sec(),
                            r.footers
                        );
                    }
                    rates = by_type;
                    Some(payloads)
                }
                None => None,
            };
            let each: Vec<&[bytes::Bytes]> = dumped.iter().map(|d| &d.keys[..]).collect();
            for (e, end) in ends
                .iter_mut()
                .enumerate()
                .filter(|(_, end)| end.source == i)
            {
                let tag = tagged(end);
                eprintln!(
                    "[{tag}] source capacity: pipelined DUMP + {}",
                    String::from_utf8_lossy(expiry)
                );
                let before = end.proxy_cpu();
                let mut source =
                    ceiling::source_capacity(end.measured().0, &probe(side), &each, expiry)?;
                source.proxy_cpu = since(before, end.proxy_cpu());
                eprintln!("[{tag}] target capacity: pipelined RESTORE into an empty target");
                let restored = for_target.as_deref().unwrap_or(&dumped);
                let before = end.proxy_cpu();
                let mut target =
                    ceiling::target_capacity(end.measured().1, &probe(&lab.target), restored)?;
                target.proxy_cpu = since(before, end.proxy_cpu());
                for (which, rate) in [("source", &source), ("target", &target)] {
                    eprintln!(
                        "[{tag}] {which} ceiling: {:.0} keys/s, {:.1} MiB/s ({:.2} s, server CPU {:.2} s{})",
                        rate.keys_per_sec(),
                        rate.mib_per_sec(),
                        rate.secs,
                        rate.server_cpu_total(),
                        rate.proxy_cpu
                            .map_or(String::new(), |c| format!(", proxy CPU {c:.2} s"))
                    );
                }
                ceilings[e] = (Some(source), Some(target));
            }
            let bytes = dumped.iter().map(|d| d.bytes).sum();
            let largest = dumped
                .iter()
                .flat_map(|d| d.payloads.iter().map(|p| p.len() as u64))
                .max()
                .unwrap_or(0);
            (bytes, largest)
        } else {
            // Only the payload bytes are needed: the same pass, keeping no payload.
            let each: Vec<&[bytes::Bytes]> = scanned.iter().map(|k| &k[..]).collect();
            let pass = ceiling::source_capacity(src, &probe(side), &each, expiry)?;
            check_count(&label, pass.keys, keys)?;
            (pass.bytes, pass.largest)
        };
        loaded.push(Loaded {
            description,
            load_secs,
            source_keys,
            keys,
            scan,
            bytes,
            largest,
            transcoding: rates,
        });
    }
    if loaded.iter().any(|l| l.keys != loaded[0].keys) {
        return Err(format!(
            "[{name}] the sources hold different key counts: {:?}",
            loaded.iter().map(|l| l.keys).collect::<Vec<_>>()
        ));
    }
    let keys = loaded[0].keys;

    let mut tools: Vec<Tool<'_>> = config.rump.as_deref().map(Tool::Rump).into_iter().collect();
    if config.verify {
        tools.extend(config.rump.as_deref().map(Tool::Verify));
    }
    tools.extend(config.peers.iter().map(Tool::Peer));
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let mut runs: Vec<Vec<Run>> = ends.iter().map(|_| Vec::new()).collect();
    for rep in 0..config.reps {
        for (end, runs) in ends.iter_mut().zip(&mut runs) {
            let tag = tagged(end);
            let source_side = &lab.sources[end.source];
            let sources = source_side.servers.len();
            let servers: Vec<u32> = source_side
                .pids()
                .into_iter()
                .chain(lab.target.pids())
                .collect();
            for tool in &tools {
                if !matches!(tool, Tool::Verify(_)) {
                    end.tgt.flushall()?;
                }
                let cmd = tool.command(lab, &end.addrs(lab)?, end.mode, &config.rump_args)?;
                let proxy_before = end.proxy_cpu();
                let m = procfs::run_measured(cmd, &servers, tck)?;
                let proxy_cpu = since(proxy_before, end.proxy_cpu());
                let check = if matches!(tool, Tool::Verify(_)) {
                    verify::verify_only_result(&m.stdout, keys)
                } else if m.status.success() {
                    verify::verify(&mut end.src, &mut end.tgt, config.sample)
                } else {
                    let last = m.stderr.lines().last().unwrap_or("").trim().to_owned();
                    Err(format!("{}: {last}", m.status))
                };
                let (source_cpu, target_cpu) = m.server_cpu.split_at(sources);
                let run = Run {
                    tool: tool.name().to_owned(),
                    rep,
                    secs: m.wall,
                    cpu: m.cpu,
                    peak_rss_kib: m.peak_rss_kib,
                    source_cpu: source_cpu.to_vec(),
                    target_cpu: target_cpu.to_vec(),
                    // The proxies run in this process: not noise.
                    other_cpu: (m.other_cpu - proxy_cpu.unwrap_or(0.0)).max(0.0),
                    proxy_cpu,
                    exit_code: m.status.code(),
                    check,
                    target_keys: end.tgt.dbsize()?,
                    stdout: m.stdout,
                };
                eprintln!(
                    "[{tag}] {} rep {}/{}: {:.2} s, {:.0} keys/s, CPU {:.2} s, peak RSS {:.1} MiB, servers CPU {:.2} s, {}other CPU {:.2} s; {}",
                    run.tool,
                    rep + 1,
                    config.reps,
                    run.secs,
                    keys as f64 / run.secs,
                    run.cpu,
                    run.peak_rss_kib as f64 / 1024.0,
                    m.server_cpu.iter().sum::<f64>(),
                    run.proxy_cpu
                        .map_or(String::new(), |c| format!("proxy CPU {c:.2} s, ")),
                    run.other_cpu,
                    match &run.check {
                        Ok(s) => format!("ok: {s}"),
                        Err(e) => format!("FAILED: {e}"),
                    }
                );
                runs.push(run);
            }
        }
    }
    for end in ends.iter_mut() {
        end.tgt.flushall()?;
    }
    Ok(ends
        .iter()
        .zip(runs)
        .zip(ceilings)
        .map(|((end, runs), (source, target))| {
            let l = &loaded[end.source];
            DatasetResult {
                topology,
                dataset,
                mode: end.mode,
                rtt: end.rtt,
                servers: ctx.servers[end.source].clone(),
                source_keys: l.source_keys.clone(),
                description: l.description.clone(),
                keys,
                bytes: l.bytes,
                largest: l.largest,
                load_secs: l.load_secs,
                scan: l.scan,
                loadavg: loadavg.clone(),
                source,
                target,
                transcoding: l.transcoding.clone(),
                runs,
            }
        })
        .collect())
}

/// One source after loading: what it holds and what its payloads weigh.
struct Loaded {
    description: String,
    load_secs: f64,
    source_keys: Vec<u64>,
    keys: u64,
    scan: (f64, f64),
    bytes: u64,
    largest: u64,
    /// Rewriting its payloads for an older target, per type byte.
    transcoding: Vec<TypeRate>,
}

/// CPU used between two readings of the proxies', if there are proxies.
fn since(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

fn check_count(name: &str, dumped: u64, keys: u64) -> Res<()> {
    if dumped == keys {
        Ok(())
    } else {
        Err(format!(
            "[{name}] SCAN + DUMP found {dumped} keys, DBSIZE says {keys}"
        ))
    }
}

/// First line of `BIN --version`, or "unknown".
fn tool_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().next().map(|l| l.trim().to_owned())
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The workspace's HEAD, with "+changes" when tracked files differ from it.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head}+changes"),
        _ => head,
    }
}

/// Now in UTC as ("2024-01-31 12:34:56 UTC", "20240131-123456").
fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC"),
        format!("{year:04}{month:02}{day:02}-{h:02}{m:02}{s:02}"),
    )
}
