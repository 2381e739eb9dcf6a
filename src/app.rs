//! Wiring a run: open both ends, build the channel and the two loops, start
//! them on their named threads, report progress while they work, and gather
//! the outcome. Holds no migration logic of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

use crate::config::{Config, Endpoint};
use crate::control::Control;
use crate::dump::{DumpHeader, DumpReader, Input};
use crate::error::{Error, Role};
use crate::file::{FileSource, FileTarget};
use crate::pipe;
use crate::progress::{Reporter, Stats, Summary};
use crate::session::{Session, Version};
use crate::source::{now_ms, ExpiryRead, ServerSource, SourceOptions, SOURCE_WAKER};
use crate::target::{ServerTarget, TargetOptions, TARGET_WAKER};

/// Batches the channel holds at most.
const CHANNEL_BATCHES: usize = 32;
/// Bytes the channel pins at most (see `pipe.rs`).
const CHANNEL_BYTES: usize = 8 * 1024 * 1024;
/// How often the main thread redraws progress and looks for signals.
const PROGRESS_TICK: Duration = Duration::from_millis(50);

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
}

/// Runs the migration `config` describes.
pub fn run(config: &Config, reporter: &mut Reporter) -> Outcome {
    let signal = Arc::new(AtomicUsize::new(0));
    let stats = Arc::new(Stats::default());
    let mut start = Instant::now();
    let result = install_signals(&signal).and_then(|()| {
        let (source, target) = open(config)?;
        start = Instant::now();
        migrate(config, source, target, &stats, &signal, reporter)
    });
    let signal = match signal.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n as i32),
    };
    let mut summary = stats.snapshot(start.elapsed());
    summary.interrupted = signal.map(signal_name);
    let error = result.err();
    summary.error = error.as_ref().map(ToString::to_string);
    Outcome {
        summary,
        error,
        failures: stats.failures(),
        signal,
    }
}

/// A source endpoint, opened.
enum SourceEnd {
    Server(Session),
    File(DumpReader<Input>),
}

/// A target endpoint, opened (a file target is created in `migrate`, once the
/// source's details for its header are known).
enum TargetEnd {
    Server(Session),
    File(String),
}

fn open(config: &Config) -> Result<(SourceEnd, TargetEnd), Error> {
    let source = match &config.source {
        Endpoint::Server(server) => SourceEnd::Server(Session::open(Role::Source, server)?),
        Endpoint::File(path) => {
            let name = path.to_string_lossy();
            SourceEnd::File(DumpReader::open(Input::open(&name)?, &name)?)
        }
        Endpoint::Stdio => SourceEnd::File(DumpReader::open(Input::open("-")?, "-")?),
    };
    let target = match &config.target {
        Endpoint::Server(server) => {
            let target = Session::open(Role::Target, server)?;
            if let SourceEnd::Server(source) = &source {
                refuse_same_database(source, &target)?;
            }
            TargetEnd::Server(target)
        }
        Endpoint::File(path) => TargetEnd::File(path.to_string_lossy().into_owned()),
        Endpoint::Stdio => TargetEnd::File("-".into()),
    };
    Ok((source, target))
}

/// Copying a database onto itself would rewrite every key while scanning it.
fn refuse_same_database(source: &Session, target: &Session) -> Result<(), Error> {
    let same_server = !source.info.run_id.is_empty() && source.info.run_id == target.info.run_id;
    if same_server && source.endpoint.db == target.endpoint.db {
        return Err(Error::Usage(format!(
            "-from {} and -to {} are the same database (run_id {})",
            source.name(),
            target.name(),
            source.info.run_id
        )));
    }
    Ok(())
}

type LoopBody = Box<dyn FnOnce() -> Result<(), Error> + Send>;

fn migrate(
    config: &Config,
    source: SourceEnd,
    target: TargetEnd,
    stats: &Arc<Stats>,
    signal: &Arc<AtomicUsize>,
    reporter: &mut Reporter,
) -> Result<(), Error> {
    let source_poll = Poll::new().map_err(Error::Setup)?;
    let target_poll = Poll::new().map_err(Error::Setup)?;
    let source_waker =
        Arc::new(Waker::new(source_poll.registry(), SOURCE_WAKER).map_err(Error::Setup)?);
    let target_waker =
        Arc::new(Waker::new(target_poll.registry(), TARGET_WAKER).map_err(Error::Setup)?);
    let control = Arc::new(Control::new(vec![
        Arc::clone(&source_waker),
        Arc::clone(&target_waker),
    ]));
    let (tx, rx) = pipe::channel(CHANNEL_BATCHES, CHANNEL_BYTES, source_waker, target_waker);

    // The dump header records where the data came from.
    let header = match &source {
        SourceEnd::Server(session) => DumpHeader {
            redis_version: session.info.product.clone(),
            rdb_version: 0,
            db: session.endpoint.db,
            started_at_ms: now_ms(),
        },
        SourceEnd::File(_) => DumpHeader::default(),
    };

    let target_loop: LoopBody = match target {
        TargetEnd::Server(session) => {
            let opts = TargetOptions {
                pipeline: config.pipeline,
                replace: config.replace,
                absttl: session.info.has_absttl(),
            };
            let target = ServerTarget::new(
                session,
                target_poll,
                opts,
                rx,
                Arc::clone(stats),
                Arc::clone(&control),
            )?;
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
            )?;
            Box::new(move || target.run())
        }
    };
    let source_loop: LoopBody = match source {
        SourceEnd::Server(session) => {
            stats.total.store(session.info.dbsize, Ordering::Relaxed);
            let opts = source_options(config, &session)?;
            let source = ServerSource::new(
                session,
                source_poll,
                opts,
                tx,
                Arc::clone(stats),
                Arc::clone(&control),
            )?;
            Box::new(move || source.run())
        }
        SourceEnd::File(reader) => {
            let source = FileSource::new(
                reader,
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
    let mut running = 2;
    while running > 0 {
        match done_rx.recv_timeout(PROGRESS_TICK) {
            Ok(()) => running -= 1,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if signal.load(Ordering::SeqCst) != 0 && !control.stopped() {
            control.stop();
        }
        reporter.tick(&stats.snapshot(start.elapsed()));
    }
    reporter.clear();
    let source_result = join(source_thread, "source");
    let target_result = join(target_thread, "target");
    // A failing loop stops the other, which then ends cleanly: the first real
    // error is the one to report. The target's comes first when both failed,
    // since a dead target is what usually makes the source give up.
    target_result.and(source_result)
}

/// What the source loop needs, from the flags and what the server supports.
fn source_options(config: &Config, session: &Session) -> Result<SourceOptions, Error> {
    if config.key_type.is_some() && session.info.version < Version(6, 0, 0) {
        return Err(Error::Unsupported {
            role: Role::Source,
            endpoint: session.name(),
            message: format!(
                "--type needs SCAN … TYPE (Redis 6.0 or later); the source is {}",
                session.info.product
            ),
        });
    }
    let expiry = if !config.copy_ttl {
        ExpiryRead::Skip
    } else if session.info.has_pexpiretime() {
        ExpiryRead::Absolute
    } else {
        ExpiryRead::Relative
    };
    Ok(SourceOptions {
        scan_count: config.scan_count,
        pipeline: config.pipeline,
        match_pattern: config.match_pattern.clone(),
        key_type: config.key_type.clone(),
        expiry,
        rate: config.rate,
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
