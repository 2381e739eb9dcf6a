//! Faults mid-run: a server restarted, a connection killed, a server frozen
//! for a while or for good, and resuming an interrupted run from a
//! checkpoint. A fault rump survives ends with exit 0 and a target equal to
//! the source key by key; one it cannot survive ends with exit 1, one line
//! naming the endpoint, and a `copied` count that matches the target.
//!
//! Each run is paced with `--rate` so it lasts about 5 s, and each fault is
//! injected once the target holds a fifth of the keys and before it holds
//! them all, so it really lands mid-run however loaded the machine is.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::util::{assert_same_data, signal, Run, Running, Server};

/// Keys in the source: enough that a paced run takes seconds, few enough
/// that comparing both ends key by key stays quick in a debug build.
const KEYS: u64 = 50_000;
/// `--rate` for the paced runs: `KEYS` in about 5 s.
const RATE: &str = "10000";
/// The target holds at least this many keys when a fault is injected.
const UNDER_WAY: i64 = KEYS as i64 / 5;
/// A run that is still going after this has hung.
const DEADLINE: Duration = Duration::from_secs(60);
/// A run that cannot survive its fault ends within this (with `--timeout 1`).
const GIVE_UP_WITHIN: Duration = Duration::from_secs(10);
/// How long a frozen server stays frozen in the survivable cases.
const FROZEN_FOR: Duration = Duration::from_secs(3);

/// A source with `KEYS` keys of 32 bytes; every tenth expires in an hour
/// and a bit (a distinct time per key), so expiry crosses the faults too.
fn loaded_source() -> Server {
    let source = Server::start();
    let mut c = source.client();
    c.populate(KEYS, 32);
    let expiring: Vec<_> = (0..KEYS)
        .step_by(10)
        .map(|i| cmd!("PEXPIRE", format!("key:{i}"), (3_600_000 + i).to_string()))
        .collect();
    c.pipeline(&expiring);
    source
}

/// Runs `rump args` with a deadline.
fn rump_bounded(args: &[&str], deadline: Duration) -> Run {
    Running::start(args).wait(deadline)
}

/// Starts `rump args` and waits until `target` holds at least `UNDER_WAY`
/// keys; panics (with rump's output) if rump ends first, and unless the run
/// is still mid-way.
fn start_under_way(args: &[&str], target: &Server) -> Running {
    let mut rump = Running::start(args);
    let start = Instant::now();
    let mut c = target.client();
    loop {
        let n = c.dbsize();
        if n >= UNDER_WAY {
            assert!(
                n < KEYS as i64,
                "the run was over ({n} keys) before the fault: it would not land mid-run"
            );
            return rump;
        }
        if rump.has_exited() {
            let run = rump.wait(DEADLINE);
            panic!(
                "rump ended (exit {:?}) before the fault, with {n} keys on the target\n\
                 $ {}\n--- stdout\n{}\n--- stderr\n{}",
                run.status, run.command, run.stdout, run.stderr
            );
        }
        assert!(
            start.elapsed() < DEADLINE,
            "rump copied only {n} keys in {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The paced copy's arguments, plus `extra`.
fn paced_args<'a>(source: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-from", source, "-to", target, "--rate", RATE, "--json"];
    args.extend_from_slice(extra);
    args
}

/// Copies a loaded source at a steady pace, applies `fault` once the copy
/// is under way, and checks the run survived it: exit 0, counts that add
/// up, every key copied once and equal on both ends. Returns the run.
fn survives(fault: impl FnOnce(&mut Server, &mut Server)) -> Run {
    let mut source = loaded_source();
    let mut target = Server::start();
    let (from, to) = (source.url(), target.url());
    let args = paced_args(&from, &to, &[]);
    let mut rump = start_under_way(&args, &target);
    fault(&mut source, &mut target);
    let run = rump.wait(DEADLINE);
    run.success();
    run.assert_reconciles();
    let held = target.client().dbsize();
    assert_eq!(held, KEYS as i64, "{}", run.stderr);
    assert_eq!(run.json_field("copied"), held as f64, "{}", run.stdout);
    assert_same_data(&source, &target);
    run
}

#[test]
fn a_target_restarted_mid_run_is_copied_again_from_the_start() {
    let run = survives(|_, target| target.restart());
    assert!(
        run.stderr.contains("restarted"),
        "stderr must say the target restarted:\n{}",
        run.stderr
    );
}

#[test]
fn a_killed_source_connection_is_reconnected_and_the_scan_goes_on() {
    survives(|source, _| {
        assert!(
            source.client().kill_clients() >= 1,
            "rump was not connected"
        );
    });
}

#[test]
fn a_killed_target_connection_is_reconnected_and_the_writes_resent() {
    survives(|_, target| {
        assert!(
            target.client().kill_clients() >= 1,
            "rump was not connected"
        );
    });
}

#[test]
fn a_target_frozen_for_three_seconds_is_waited_for() {
    survives(|_, target| {
        target.pause();
        std::thread::sleep(FROZEN_FOR);
        target.resume();
    });
}

#[test]
fn a_source_frozen_for_three_seconds_is_waited_for() {
    survives(|source, target| {
        source.pause();
        std::thread::sleep(FROZEN_FOR);
        let held = target.client().dbsize();
        source.resume();
        assert!(
            held < KEYS as i64,
            "the run ended while the source was frozen"
        );
    });
}

/// Waits until `target` settles (two equal DBSIZE readings 200 ms apart):
/// a thawed server first runs what was queued for it while frozen.
fn settled_dbsize(target: &Server) -> i64 {
    let mut c = target.client();
    let mut last = c.dbsize();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = c.dbsize();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[test]
fn a_target_frozen_for_good_ends_the_run_naming_it() {
    let source = loaded_source();
    let target = Server::start();
    let (from, to) = (source.url(), target.url());
    let args = paced_args(&from, &to, &["--timeout", "1"]);
    let mut rump = start_under_way(&args, &target);
    // Everything the target had run by now was answered before it froze.
    let acknowledged = target.client().dbsize();
    target.pause();
    let frozen = Instant::now();
    let run = rump.wait(DEADLINE);
    let took = frozen.elapsed();
    target.resume();
    run.expect_code(1);
    assert!(took < GIVE_UP_WITHIN, "gave up only after {took:?}");
    let line = run.error_line();
    assert!(
        line.contains(&format!("target 127.0.0.1:{}", target.port)),
        "{line}"
    );
    // Writes rump sent but never saw answered wait in the frozen server's
    // socket and run when it thaws, so the target may end up holding more
    // than was acknowledged, never less.
    let held = settled_dbsize(&target);
    let copied = run.json_field("copied");
    assert!(
        acknowledged as f64 <= copied && copied <= held as f64,
        "copied {copied} must lie between what the target had answered before freezing \
         ({acknowledged}) and what it holds ({held})"
    );
}

#[test]
fn a_source_killed_for_good_ends_the_run_naming_it() {
    let mut source = loaded_source();
    let target = Server::start();
    let (from, to) = (source.url(), target.url());
    let args = paced_args(&from, &to, &["--timeout", "1"]);
    let mut rump = start_under_way(&args, &target);
    source.kill();
    let killed = Instant::now();
    let run = rump.wait(DEADLINE);
    let took = killed.elapsed();
    run.expect_code(1);
    assert!(took < GIVE_UP_WITHIN, "gave up only after {took:?}");
    let line = run.error_line();
    assert!(
        line.contains(&format!("source 127.0.0.1:{}", source.port)),
        "{line}"
    );
    assert_eq!(
        run.json_field("copied"),
        target.client().dbsize() as f64,
        "copied counts exactly what the target holds"
    );
}

/// Starts a paced copy with `--checkpoint file`, interrupts it once under
/// way, and checks it left a private checkpoint behind.
fn interrupted_checkpoint(source: &Server, target: &Server, file: &Path) {
    let (from, to) = (source.url(), target.url());
    let args = paced_args(&from, &to, &["--checkpoint", file.to_str().unwrap()]);
    let mut rump = start_under_way(&args, target);
    signal(rump.pid(), "INT");
    let run = rump.wait(DEADLINE);
    run.expect_code(130);
    let meta = std::fs::metadata(file).unwrap_or_else(|e| {
        panic!(
            "no checkpoint at {file:?} after SIGINT: {e}\n{}",
            run.stderr
        )
    });
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "a checkpoint names the source's keys: private"
    );
}

#[test]
fn an_interrupted_run_resumes_from_its_checkpoint() {
    let source = loaded_source();
    let target = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rump.checkpoint");
    interrupted_checkpoint(&source, &target, &file);
    let first = target.client().dbsize() as u64;
    assert!(first > 0 && first < KEYS, "{first}");
    target.client().ok(&["CONFIG", "RESETSTAT"]);

    let (from, to) = (source.url(), target.url());
    let run = rump_bounded(
        &[
            "-from",
            &from,
            "-to",
            &to,
            "--checkpoint",
            file.to_str().unwrap(),
            "--json",
        ],
        DEADLINE,
    );
    run.success();
    run.assert_reconciles();
    assert!(run.stderr.contains("resuming"), "{}", run.stderr);
    assert!(!file.exists(), "a completed run removes its checkpoint");
    assert_same_data(&source, &target);
    // The second run restored what the first had not, and not much more:
    // at most the last few SCAN batches of the first run again.
    let restored = target.client().command_calls("restore");
    assert!(
        restored >= KEYS - first && restored < KEYS - first / 2,
        "the resumed run sent {restored} RESTOREs; the first run had copied {first} of {KEYS}"
    );
}

#[test]
fn a_checkpoint_of_another_source_or_selection_is_refused() {
    let source = loaded_source();
    let target = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rump.checkpoint");
    interrupted_checkpoint(&source, &target, &file);
    let saved = std::fs::read(&file).unwrap();
    let held = target.client().dbsize();

    let other = Server::start();
    other.client().populate(10, 32);
    let (from, to, other_from, db1) = (source.url(), target.url(), other.url(), source.url_db(1));
    let path = file.to_str().unwrap();
    for changed in [
        vec!["-from", &other_from, "-to", &to],
        vec!["-from", &db1, "-to", &to],
        vec!["-from", &from, "-to", &to, "--match", "other:*"],
        vec!["-from", &from, "-to", &to, "--type", "hash"],
    ] {
        let mut args = changed.clone();
        args.extend(["--checkpoint", path]);
        let run = rump_bounded(&args, DEADLINE);
        run.expect_code(2);
        assert!(
            run.stderr.to_lowercase().contains("checkpoint"),
            "{changed:?}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(&file).ok().as_deref(),
            Some(&saved[..]),
            "{changed:?}: the checkpoint must be left as it was"
        );
        assert_eq!(
            target.client().dbsize(),
            held,
            "{changed:?} wrote to the target"
        );
    }
}
