//! Wiring a run: open both ends (connect and handshake, concurrently and
//! without blocking, under one deadline), build the channel and the two
//! loops, start them on their named threads, report progress and write
//! checkpoints while they work, and gather the outcome. Holds no migration
//! logic of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use crate::cluster::slots::SlotSet;
use crate::cluster::topology::Topology;
use crate::config::{Config, Endpoint, ReadFrom, ServerEndpoint, Verify};
use crate::dump::{DumpHeader, DumpReader, Input};
use crate::engine::checkpoint::{CheckpointFile, Selection};
use crate::engine::clock::now_ms;
use crate::engine::control::Control;
use crate::engine::file::{FileSource, FileTarget};
use crate::engine::ledger::Ledger;
use crate::engine::link::Link;
use crate::engine::pipe;
use crate::engine::poll_once;
use crate::engine::restore::{RestoreOptions, RestoreRole};
use crate::engine::route::{ClusterRoute, Route};
use crate::engine::scan::{ExpiryRead, ScanOptions, ScanRole};
use crate::engine::slab::WAKER;
use crate::engine::source::{FeedOf, SourceLoop, SourceNode};
use crate::engine::target::{TargetLoop, TargetNode};
use crate::error::{Error, Role};
use crate::net::conn::{Conn, Startup};
use crate::net::{ServerInfo, Version};
use crate::progress::{group, Reporter, Stats, Summary};
use crate::verify::{Report, Verifier};

/// Batches the channel holds at most.
const CHANNEL_BATCHES: usize = 32;
/// Bytes the channel and the target's unacknowledged items pin at most (see
/// `engine/pipe.rs`).
const CHANNEL_BYTES: usize = 16 * 1024 * 1024;
/// How often the main thread redraws progress and looks for signals.
const PROGRESS_TICK: Duration = Duration::from_millis(50);
/// How often a checkpoint is written while the run goes on.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    /// The error that ended the run early, if any.
    pub error: Option<Error>,
    /// The first per-key failures, already phrased.
    pub failures: Vec<String>,
    /// SIGINT or SIGTERM, if one stopped the run.
    pub signal: Option<i32>,
    /// Both ends opened and the copy began (a start-up failure has no
    /// summary worth printing).
    pub started: bool,
}

/// Runs the migration `config` describes.
pub fn run(config: &Config, reporter: &mut Reporter) -> Outcome {
    let signal = Arc::new(AtomicUsize::new(0));
    let stats = Arc::new(Stats::default());
    let mut start = Instant::now();
    let mut started = false;
    if let Some(client) = insecure_tls(config) {
        debug_assert!(client.insecure());
        reporter.notices(vec![
            "warning: --tls-insecure: the servers' certificates are not verified, so the \
             connection is encrypted to whoever answers, not necessarily your server"
                .to_string(),
        ]);
    }
    // Settings `--live-enable-events` changed: put back whatever happens.
    let mut changed = Vec::new();
    let mut verified = None;
    let result = install_signals(&signal).and_then(|()| {
        // A checkpoint for another selection is refused before connecting.
        let checkpoint = open_checkpoint(config)?;
        let (mut source, target) = open(config, &signal)?;
        let feeds = match config.live {
            true => start_live(config, &mut source, &signal, &mut changed)?,
            false => Vec::new(),
        };
        start = Instant::now();
        started = true;
        let opened = if config.verify == Verify::Only {
            Some((source, target))
        } else {
            let ends = Ends {
                source,
                target,
                checkpoint,
                feeds,
            };
            migrate(config, ends, &stats, &signal, reporter, None)?;
            None
        };
        if config.verify == Verify::Off {
            return Ok(());
        }
        verify(config, opened, &stats, &signal, reporter, &mut verified)
    });
    let result = match (result, put_back_events(config, &changed, &stats)) {
        (Ok(()), Err(e)) => Err(e),
        (result, _) => result,
    };
    reporter.notices(stats.take_notices());
    let signal = match signal.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n as i32),
    };
    let mut summary = stats.snapshot(start.elapsed());
    summary.interrupted = signal.map(signal_name);
    summary.verify = verified;
    let error = result.err();
    summary.error = error.as_ref().map(ToString::to_string);
    Outcome {
        summary,
        error,
        failures: stats.failures(),
        signal,
        started,
    }
}

/// `--live`: checks (or sets) every scanned node's notification setting,
/// then opens and subscribes one notification connection per node, before
/// the scan starts.
fn start_live(
    config: &Config,
    source: &mut SourceEnd,
    signal: &AtomicUsize,
    changed: &mut Vec<crate::live::ChangedSetting>,
) -> Result<Vec<(Opened, crate::engine::live::Feed)>, Error> {
    let SourceEnd::Servers(nodes) = source else {
        return Ok(Vec::new());
    };
    for node in nodes.iter_mut() {
        let setting =
            crate::live::check_events(&mut node.conn, config.live_enable_events, config.timeout)?;
        changed.extend(setting);
    }
    let wanted: Vec<_> = nodes
        .iter()
        .map(|n| (Role::Source, n.conn.endpoint().clone()))
        .collect();
    let mut feeds = Vec::with_capacity(wanted.len());
    for mut opened in open_all(&wanted, config.timeout, signal)? {
        let db = opened.conn.endpoint().db;
        let feed = crate::live::subscribe(&mut opened.conn, db, config.timeout)?;
        feeds.push((opened, feed));
    }
    Ok(feeds)
}

/// Puts back what `--live-enable-events` changed, on fresh connections (the
/// run's own may be gone); a failure is reported, never silent.
fn put_back_events(
    config: &Config,
    changed: &[crate::live::ChangedSetting],
    stats: &Stats,
) -> Result<(), Error> {
    if changed.is_empty() {
        return Ok(());
    }
    // Not interruptible: a second Ctrl-C must not leave the setting changed.
    let never = AtomicUsize::new(0);
    let wanted: Vec<_> = changed
        .iter()
        .map(|c| (Role::Source, c.endpoint.clone()))
        .collect();
    let opened = open_all(&wanted, config.timeout, &never)?;
    for (mut node, setting) in opened.into_iter().zip(changed) {
        crate::live::put_back(&mut node.conn, &setting.old, config.timeout)?;
        stats.notice(format!(
            "source {}: notify-keyspace-events is back to {:?}",
            node.conn.name(),
            setting.old
        ));
    }
    Ok(())
}

/// The TLS client of a run with `--tls-insecure`.
fn insecure_tls(config: &Config) -> Option<&crate::net::tls::TlsClient> {
    [&config.source, &config.target]
        .into_iter()
        .find_map(|end| match end {
            Endpoint::Server(server) => server.tls_client.as_deref(),
            _ => None,
        })
        .filter(|client| client.insecure())
}

/// A server end whose handshake is done, still registered with the
/// start-up poll.
pub(crate) struct Opened {
    pub(crate) conn: Conn,
    pub(crate) info: ServerInfo,
}

/// A source endpoint, opened: one node for a standalone server, the nodes
/// to scan for a cluster.
enum SourceEnd {
    Servers(Vec<Opened>),
    File(Box<DumpReader<Input>>),
}

/// A target endpoint, opened (a file target is created in `migrate`, once the
/// source's details for its header are known).
enum TargetEnd {
    Server(Box<Opened>),
    /// A cluster: a connection to every master, and the topology that maps
    /// slots to them.
    Cluster {
        seed: ServerEndpoint,
        masters: Vec<Opened>,
        topology: Box<Topology>,
        shards: bool,
    },
    File(String),
}

fn open(config: &Config, signal: &AtomicUsize) -> Result<(SourceEnd, TargetEnd), Error> {
    // Both servers' connects and handshakes run on one start-up poll at once,
    // so a slow source does not delay learning that the target refuses.
    let mut wanted: Vec<(Role, ServerEndpoint)> = Vec::new();
    let mut source_file = None;
    match &config.source {
        Endpoint::Server(server) => wanted.push((Role::Source, server.clone())),
        Endpoint::File(path) => {
            let name = path.to_string_lossy();
            source_file = Some(DumpReader::open(Input::open(&name)?, &name)?);
        }
        Endpoint::Stdio => source_file = Some(DumpReader::open(Input::open("-")?, "-")?),
    }
    let target_file = match &config.target {
        Endpoint::Server(server) => {
            wanted.push((Role::Target, server.clone()));
            None
        }
        Endpoint::File(path) => Some(path.to_string_lossy().into_owned()),
        Endpoint::Stdio => Some("-".to_string()),
    };
    let mut opened = open_all(&wanted, config.timeout, signal)?.into_iter();

    let source = match source_file {
        Some(reader) => SourceEnd::File(Box::new(reader)),
        None => {
            let seed = opened.next().ok_or_else(missing)?;
            SourceEnd::Servers(source_nodes(config, seed, signal)?)
        }
    };
    let target = match target_file {
        Some(path) => TargetEnd::File(path),
        None => {
            let seed = opened.next().ok_or_else(missing)?;
            match seed.info.topology.clone() {
                None => TargetEnd::Server(Box::new(seed)),
                Some(topology) => {
                    let nodes: Vec<ServerEndpoint> = {
                        let route = ClusterRoute::new(seed.conn.endpoint().clone(), true);
                        topology
                            .shards()
                            .iter()
                            .filter(|s| !s.slots.is_empty())
                            .map(|s| route.endpoint_of_node(&s.master))
                            .collect()
                    };
                    let wanted: Vec<_> = nodes.into_iter().map(|e| (Role::Target, e)).collect();
                    TargetEnd::Cluster {
                        seed: seed.conn.endpoint().clone(),
                        masters: open_all(&wanted, config.timeout, signal)?,
                        topology: Box::new(topology),
                        shards: true,
                    }
                }
            }
        }
    };
    refuse_same_database(&source, &target)?;
    Ok((source, target))
}

/// Connects to every endpoint and runs every handshake at once.
pub(crate) fn open_all(
    wanted: &[(Role, ServerEndpoint)],
    timeout: Duration,
    signal: &AtomicUsize,
) -> Result<Vec<Opened>, Error> {
    let poll = Poll::new().map_err(Error::Setup)?;
    let mut pending = Vec::with_capacity(wanted.len());
    for (i, (role, endpoint)) in wanted.iter().enumerate() {
        // Tokens are the index in `pending` plus one.
        let conn = Conn::open(*role, endpoint, poll.registry(), Token(i + 1), timeout)?;
        pending.push((conn, None));
    }
    handshake_all(poll, &mut pending, signal)?;
    Ok(pending
        .into_iter()
        .map(|(conn, info)| Opened {
            conn,
            info: info.unwrap_or_default(),
        })
        .collect())
}

/// The nodes a source is read from: the seed itself for a standalone
/// server; for a cluster, the master (or, with `--read-from replica`, a
/// replica) of every shard that serves a selected slot.
pub(crate) fn source_nodes(
    config: &Config,
    seed: Opened,
    signal: &AtomicUsize,
) -> Result<Vec<Opened>, Error> {
    let Some(topology) = seed.info.topology.clone() else {
        if config.read_from == ReadFrom::Replica {
            return Err(Error::Usage(format!(
                "--read-from replica: -from {} is not a cluster node; to read a standalone \
                 replica, name the replica in -from",
                seed.conn.name()
            )));
        }
        return Ok(vec![seed]);
    };
    let route = ClusterRoute::new(seed.conn.endpoint().clone(), true);
    let mut wanted = Vec::new();
    for shard in topology.shards() {
        let selected = shard
            .slots
            .iter()
            .any(|&(first, last)| any_selected(config.slots.as_ref(), first, last));
        if shard.slots.is_empty() || !selected {
            continue;
        }
        let node = match config.read_from {
            ReadFrom::Master => &shard.master,
            ReadFrom::Replica => shard
                .replicas
                .iter()
                .find(|r| r.health != "failed" && r.health != "loading")
                .ok_or_else(|| Error::Unsupported {
                    role: Role::Source,
                    endpoint: shard.master.addr(),
                    message: "--read-from replica: this shard has no replica online to read from"
                        .into(),
                })?,
        };
        let mut endpoint = route.endpoint_of_node(node);
        endpoint.readonly = config.read_from == ReadFrom::Replica;
        wanted.push((Role::Source, endpoint));
    }
    open_all(&wanted, config.timeout, signal)
}

/// True when `slots` (no set: every slot) holds a slot of `first..=last`.
fn any_selected(slots: Option<&SlotSet>, first: u16, last: u16) -> bool {
    slots.map_or(true, |set| (first..=last).any(|s| set.contains(s)))
}

fn missing() -> Error {
    Error::Setup(std::io::Error::other("a server end was not opened"))
}

/// Drives every pending connection until all are ready; the first error
/// (the source's, when both fail at once) ends start-up.
fn handshake_all(
    mut poll: Poll,
    pending: &mut [(Conn, Option<ServerInfo>)],
    signal: &AtomicUsize,
) -> Result<(), Error> {
    let mut events = Events::with_capacity(8);
    loop {
        for (conn, info) in pending.iter_mut() {
            if info.is_none() {
                if let Startup::Ready(got) = conn.advance(poll.registry())? {
                    *info = Some(*got);
                }
            }
        }
        if pending.iter().all(|(_, info)| info.is_some()) {
            // Leave the start-up poll: each loop registers its own.
            for (conn, _) in pending.iter_mut() {
                conn.deregister(poll.registry());
            }
            return Ok(());
        }
        if signal.load(Ordering::SeqCst) != 0 {
            return Err(Error::Aborted("interrupted during start-up".into()));
        }
        poll_once(&mut poll, &mut events, PROGRESS_TICK)?;
        for event in events.iter() {
            if let Some((conn, _)) = pending.get_mut(event.token().0.wrapping_sub(1)) {
                conn.on_event(event);
            }
        }
    }
}

/// Copying a database onto itself would rewrite every key while scanning
/// it: the same server and db, or two nodes of the same cluster.
fn refuse_same_database(source: &SourceEnd, target: &TargetEnd) -> Result<(), Error> {
    let SourceEnd::Servers(sources) = source else {
        return Ok(());
    };
    // Nodes of one cluster (by node id), whichever nodes the URIs name.
    if let (Some(s), TargetEnd::Cluster { topology, .. }) = (sources.first(), target) {
        if let Some(st) = &s.info.topology {
            let ids = |t: &Topology| -> Vec<String> {
                t.shards()
                    .iter()
                    .map(|s| s.master.id.clone())
                    .filter(|i| !i.is_empty())
                    .collect()
            };
            let theirs = ids(topology);
            if ids(st).iter().any(|id| theirs.contains(id)) {
                return Err(Error::Usage(format!(
                    "-from {} and -to {} are nodes of the same cluster",
                    s.conn.name(),
                    target_name(target)
                )));
            }
        }
    }
    let targets: Vec<(&str, &str, u32)> = match target {
        TargetEnd::Server(t) => vec![(t.conn.name(), &t.info.run_id, t.conn.endpoint().db)],
        TargetEnd::Cluster { masters, .. } => masters
            .iter()
            .map(|m| (m.conn.name(), m.info.run_id.as_str(), 0))
            .collect(),
        TargetEnd::File(_) => return Ok(()),
    };
    for s in sources {
        for &(name, run_id, db) in &targets {
            if !run_id.is_empty() && s.info.run_id == run_id && s.conn.endpoint().db == db {
                return Err(Error::Usage(format!(
                    "-from {} and -to {name} are the same database (run_id {run_id})",
                    s.conn.name()
                )));
            }
        }
    }
    Ok(())
}

/// The target as the user named it, for messages.
fn target_name(target: &TargetEnd) -> String {
    match target {
        TargetEnd::Cluster { seed, .. } => seed.to_string(),
        TargetEnd::Server(t) => t.conn.name().to_string(),
        TargetEnd::File(path) => path.clone(),
    }
}

type LoopBody = Box<dyn FnOnce() -> Result<(), Error> + Send>;

/// Everything opened before the copy starts.
struct Ends {
    source: SourceEnd,
    target: TargetEnd,
    checkpoint: Option<CheckpointFile>,
    /// `--live`: a subscribed notification connection per scanned node.
    feeds: Vec<(Opened, crate::engine::live::Feed)>,
}

fn open_checkpoint(config: &Config) -> Result<Option<CheckpointFile>, Error> {
    match (&config.checkpoint, &config.source) {
        (Some(path), Endpoint::Server(server)) => {
            Ok(Some(CheckpointFile::open(path, selection(config, server))?))
        }
        _ => Ok(None),
    }
}

/// Compares both ends (`opened`, or opened anew after a copy): a pass of
/// the engine whose target loop only reads. `--verify-only` counts its
/// source side in `stats`; after a copy, the copy's counts stay its own.
fn verify(
    config: &Config,
    opened: Option<(SourceEnd, TargetEnd)>,
    stats: &Arc<Stats>,
    signal: &Arc<AtomicUsize>,
    reporter: &mut Reporter,
    report: &mut Option<Report>,
) -> Result<(), Error> {
    let (source, target) = match opened {
        Some(ends) => ends,
        None => open(config, signal)?,
    };
    let pass = match config.verify {
        Verify::Only => Arc::clone(stats),
        _ => Arc::new(Stats::default()),
    };
    let started = Instant::now();
    let verifier = Verifier::new(config, signal);
    let ends = Ends {
        source,
        target,
        checkpoint: None,
        feeds: Vec::new(),
    };
    let result = migrate(config, ends, &pass, signal, reporter, Some(&verifier));
    reporter.notices(pass.take_notices());
    let mut found = verifier.tally.report(started.elapsed().as_secs_f64());
    // Gone from the source between SCAN and DUMP: not differences either.
    found.gone += pass.vanished.load(Ordering::Relaxed);
    *report = Some(found);
    result
}

/// The opened target of a verify, handed to its loop.
fn check_target(target: TargetEnd) -> Result<crate::verify::Target, Error> {
    use crate::verify::Target;
    match target {
        TargetEnd::Server(opened) => Ok(Target::Server(Box::new((opened.conn, opened.info)))),
        TargetEnd::Cluster {
            seed,
            masters,
            topology,
            ..
        } => Ok(Target::Cluster {
            seed,
            masters: masters.into_iter().map(|o| (o.conn, o.info)).collect(),
            topology,
        }),
        TargetEnd::File(path) => Err(Error::Usage(format!(
            "a verify compares with a server; -to {path} is a dump file"
        ))),
    }
}

fn migrate(
    config: &Config,
    ends: Ends,
    stats: &Arc<Stats>,
    signal: &Arc<AtomicUsize>,
    reporter: &mut Reporter,
    verifier: Option<&Verifier>,
) -> Result<(), Error> {
    // A verify pass reads the keyspace once, even after a live sync.
    let live = config.live && verifier.is_none();
    let source_poll = Poll::new().map_err(Error::Setup)?;
    let target_poll = Poll::new().map_err(Error::Setup)?;
    let source_waker = Arc::new(Waker::new(source_poll.registry(), WAKER).map_err(Error::Setup)?);
    let target_waker = Arc::new(Waker::new(target_poll.registry(), WAKER).map_err(Error::Setup)?);
    let control = Arc::new(Control::new(vec![
        Arc::clone(&source_waker),
        Arc::clone(&target_waker),
    ]));
    let ledger = Arc::new(Ledger::default());
    let (tx, rx) = pipe::channel(CHANNEL_BATCHES, CHANNEL_BYTES, source_waker, target_waker);

    let Ends {
        source,
        target,
        checkpoint,
        feeds,
    } = ends;
    // The dump header records where the data came from.
    let header = match &source {
        SourceEnd::Servers(nodes) => DumpHeader {
            redis_version: nodes
                .first()
                .map_or_else(String::new, |n| n.info.product.clone()),
            rdb_version: 0,
            db: nodes.first().map_or(0, |n| n.conn.endpoint().db),
            started_at_ms: now_ms(),
        },
        SourceEnd::File(_) => DumpHeader::default(),
    };

    let opts = RestoreOptions {
        pipeline: config.pipeline,
        replace: config.replace,
        drop_field_ttl: config.drop_field_ttl,
    };
    let target_loop: LoopBody = match target {
        // A verify: the same source side, a target side that only reads.
        target if verifier.is_some() => {
            let verifier = verifier.ok_or_else(missing)?;
            let target = check_target(target)?;
            let check = verifier.target_loop(target, target_poll, rx, stats, &control, &ledger)?;
            Box::new(move || check.run())
        }
        TargetEnd::Server(opened) => {
            let mut target = TargetLoop::new(
                target_poll,
                rx,
                Route::Single(vec![Token(1)]),
                opts.clone(),
                config.timeout,
                Arc::clone(stats),
                Arc::clone(&control),
                Arc::clone(&ledger),
            );
            if config.live {
                target.set_live();
            }
            add_target_node(&mut target, *opened, &opts, config.timeout)?;
            Box::new(move || target.run())
        }
        TargetEnd::Cluster {
            seed,
            masters,
            topology,
            shards,
        } => {
            let route = Route::Cluster(ClusterRoute::new(seed, shards));
            let mut target = TargetLoop::new(
                target_poll,
                rx,
                route,
                opts.clone(),
                config.timeout,
                Arc::clone(stats),
                Arc::clone(&control),
                Arc::clone(&ledger),
            );
            for opened in masters {
                add_target_node(&mut target, opened, &opts, config.timeout)?;
            }
            target.use_topology(&topology);
            Box::new(move || target.run())
        }
        TargetEnd::File(path) => {
            let target = FileTarget::create(
                &path,
                config.format,
                header,
                target_poll,
                rx,
                Arc::clone(stats),
                Arc::clone(&control),
                Arc::clone(&ledger),
            )?;
            Box::new(move || target.run())
        }
    };
    let source_loop: LoopBody = match source {
        SourceEnd::Servers(nodes) => {
            let total = nodes.iter().map(|n| n.info.dbsize).sum();
            stats.total.store(total, Ordering::Relaxed);
            let mut source = SourceLoop::new(
                source_poll,
                tx,
                config.rate,
                Arc::clone(stats),
                Arc::clone(&control),
                Arc::clone(&ledger),
            );
            if let (Some(first), Endpoint::Server(seed)) = (nodes.first(), &config.source) {
                if first.info.cluster {
                    source.set_cluster(seed.clone(), config.timeout);
                }
            }
            let mut scanners = Vec::new();
            for mut opened in nodes {
                let opts = scan_options(config, &opened)?;
                opened
                    .conn
                    .register(source.registry(), source.next_token())?;
                let name = opened.conn.name().to_string();
                let db = opened.conn.endpoint().db;
                let cursor = resume_cursor(checkpoint.as_ref(), &name, &opened.info, db, stats);
                let index = ledger.add_node(&name, &opened.info.run_id, db, &cursor);
                let scan = ScanRole::new(
                    index,
                    &name,
                    opts,
                    control.epoch(),
                    &cursor,
                    opened.info.dbsize,
                    Arc::clone(&ledger),
                    Arc::clone(stats),
                );
                let mut scan = scan;
                if live {
                    scan.follow_changes();
                }
                let token = source.add(SourceNode::new(
                    Link::new(opened.conn, opened.info, config.timeout),
                    scan,
                    index,
                    None,
                ));
                scanners.push((token, index, name));
            }
            // `--live`: each scanned node's notification connection, in the
            // same order as the nodes.
            for ((mut opened, feed), (token, index, name)) in feeds.into_iter().zip(scanners) {
                opened
                    .conn
                    .register(source.registry(), source.next_token())?;
                let scan = ScanRole::new(
                    index,
                    &name,
                    scan_options(config, &opened)?,
                    control.epoch(),
                    "0",
                    0,
                    Arc::clone(&ledger),
                    Arc::clone(stats),
                )
                .adopting();
                source.add(SourceNode::new(
                    Link::new(opened.conn, opened.info, config.timeout),
                    scan,
                    index,
                    Some(FeedOf::new(feed, token)),
                ));
            }
            if live {
                source.set_live();
                stats.live.store(true, Ordering::Relaxed);
            }
            Box::new(move || source.run())
        }
        SourceEnd::File(reader) => {
            let source = FileSource::new(
                *reader,
                source_poll,
                tx,
                !config.copy_ttl,
                Arc::clone(stats),
                Arc::clone(&control),
            );
            Box::new(move || source.run())
        }
    };

    // Each loop says when it ends, so a short run is not held up by the tick.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    // A failing source only ends the stream: what it already handed over (a
    // dump's verified blocks, a server's keys read before it went away) is
    // still written. A failing target stops everything.
    let source_thread = spawn("source", None, done_tx.clone(), source_loop)?;
    let target_thread = spawn("target", Some(&control), done_tx, target_loop)?;

    let start = Instant::now();
    let mut last_checkpoint = Instant::now();
    let mut checkpoint_error = None;
    let mut running = 2;
    while running > 0 {
        match done_rx.recv_timeout(PROGRESS_TICK) {
            Ok(()) => running -= 1,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if signal.load(Ordering::SeqCst) != 0 && !control.stopped() {
            if !live {
                control.stop();
            } else if !control.draining() {
                // The normal end of a live sync: apply what was seen, then stop.
                stats.notice(format!(
                    "stopping: applying the {} changes already seen, then exiting",
                    group(stats.live_pending.load(Ordering::Relaxed))
                ));
                control.drain();
            }
        }
        reporter.notices(stats.take_notices());
        reporter.tick(&stats.snapshot(start.elapsed()));
        if let Some(cp) = &checkpoint {
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY && checkpoint_error.is_none() {
                last_checkpoint = Instant::now();
                if let Err(e) = cp.write(ledger.snapshot(), copied(stats)) {
                    checkpoint_error = Some(e);
                    control.stop();
                }
            }
        }
    }
    reporter.clear();
    let source_result = join(source_thread, "source");
    let target_result = join(target_thread, "target");
    // A failing loop stops the other, which then ends cleanly: the first real
    // error is the one to report. The target's comes first when both failed,
    // since a dead target is what usually makes the source give up.
    let result = target_result.and(source_result);
    if let Some(cp) = &checkpoint {
        if result.is_ok() && control.finished() && checkpoint_error.is_none() {
            cp.remove();
        } else if checkpoint_error.is_none() {
            cp.write(ledger.snapshot(), copied(stats))?;
        }
    }
    match checkpoint_error {
        Some(e) => Err(e),
        None => result,
    }
}

fn copied(stats: &Stats) -> u64 {
    stats.copied.load(Ordering::Relaxed)
}

/// What selects the keys of this run, for the checkpoint.
fn selection(config: &Config, source: &ServerEndpoint) -> Selection {
    Selection {
        source: source.to_string(),
        match_pattern: config.match_pattern.clone(),
        key_type: config.key_type.clone(),
        slots: config.slots.as_ref().map(ToString::to_string),
    }
}

/// Where the source's scan starts: where the checkpoint says, when it was
/// written for this very server; from the beginning otherwise. Says which.
fn resume_cursor(
    checkpoint: Option<&CheckpointFile>,
    name: &str,
    info: &ServerInfo,
    db: u32,
    stats: &Stats,
) -> String {
    let Some(cp) = checkpoint else {
        return "0".into();
    };
    if cp.resumed.is_none() {
        return "0".into();
    }
    match cp.resume_cursor(name, &info.run_id, db) {
        Some(node) if node.complete => {
            stats.notice(format!(
                "resuming from checkpoint: the earlier runs copied {} keys and had finished the \
                 scan; scanning again from the start",
                group(cp.copied_before())
            ));
            "0".into()
        }
        Some(node) => {
            stats.notice(format!(
                "resuming from checkpoint: the earlier runs copied {} keys; the scan continues at \
                 cursor {}",
                group(cp.copied_before()),
                node.cursor
            ));
            node.cursor.clone()
        }
        None => {
            stats.notice(format!(
                "checkpoint: source {name} restarted since the checkpoint was written (run_id \
                 changed), so its cursor means nothing now: starting over"
            ));
            "0".into()
        }
    }
}

/// Hands an opened target connection to the loop, with its restore role.
fn add_target_node(
    target: &mut TargetLoop,
    mut opened: Opened,
    opts: &RestoreOptions,
    timeout: Duration,
) -> Result<(), Error> {
    opened
        .conn
        .register(target.registry(), target.next_token())?;
    let restore = RestoreRole::new(opened.conn.name(), opts.clone(), &opened.info);
    target.add(TargetNode::new(
        Link::new(opened.conn, opened.info, timeout),
        restore,
    ));
    Ok(())
}

/// What the scan role needs, from the flags and what the server supports.
fn scan_options(config: &Config, source: &Opened) -> Result<ScanOptions, Error> {
    if config.key_type.is_some() && source.info.version < Version(6, 0, 0) {
        return Err(Error::Unsupported {
            role: Role::Source,
            endpoint: source.conn.name().to_string(),
            message: format!(
                "--type needs SCAN … TYPE (Redis 6.0 or later); the source is {}",
                source.info.product
            ),
        });
    }
    let expiry = if !config.copy_ttl {
        ExpiryRead::Skip
    } else if source.info.has_pexpiretime() {
        ExpiryRead::Absolute
    } else {
        ExpiryRead::Relative
    };
    Ok(ScanOptions {
        slots: config.slots.clone(),
        scan_count: config.scan_count,
        pipeline: config.pipeline,
        lanes: !source.info.cluster && config.checkpoint.is_none(),
        match_pattern: config.match_pattern.clone(),
        key_type: config.key_type.clone(),
        expiry,
    })
}

/// Starts a loop on a named thread. It reports on `done` when it ends; if it
/// fails and `stop_on_error` is given, every other loop is stopped.
fn spawn(
    name: &str,
    stop_on_error: Option<&Arc<Control>>,
    done: std::sync::mpsc::Sender<()>,
    body: LoopBody,
) -> Result<thread::JoinHandle<Result<(), Error>>, Error> {
    let control = stop_on_error.map(Arc::clone);
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = body();
            if let (Err(_), Some(control)) = (&result, &control) {
                control.stop();
            }
            let _ = done.send(());
            result
        })
        .map_err(Error::Setup)
}

fn join(handle: thread::JoinHandle<Result<(), Error>>, name: &str) -> Result<(), Error> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::Setup(std::io::Error::other(format!(
            "the {name} thread panicked"
        ))))
    })
}

/// SIGINT/SIGTERM set `signal` (the loops then stop cleanly); a second one
/// exits at once, for a user who does not want to wait.
fn install_signals(signal: &Arc<AtomicUsize>) -> Result<(), Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        let already = Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&already))
            .map_err(Error::Setup)?;
        signal_hook::flag::register(sig, already).map_err(Error::Setup)?;
        signal_hook::flag::register_usize(sig, Arc::clone(signal), sig as usize)
            .map_err(Error::Setup)?;
    }
    Ok(())
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
