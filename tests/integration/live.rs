//! Live sync (`--live`): a real writer process (`redis-cli`) changes the
//! source while rump scans it and after, and the target ends equal to the
//! source key by key once rump is stopped with a signal; the refusals, the
//! setting `--live-enable-events` puts back, a lost notification
//! connection, a flush, and a cluster source.
//!
//! Each run is bounded: a few thousand keys, `--rate` so the scan lasts
//! seconds, and a deadline on every wait.

use std::time::{Duration, Instant};

use crate::util::cluster::shared_cluster;
use crate::util::live::{
    changes, events_setting, seed_commands, set_events, LiveRun, Writer, PER_TYPE, SCAN_COMPLETE,
};
use crate::util::{assert_same_data, assert_same_snapshots, rump, snapshot_matching, Run, Server};

/// Any wait for rump (a debug build on 2 busy cores).
const WITHIN: Duration = Duration::from_secs(60);
/// The short TTLs the writer sets: expired well before rump is stopped.
const SHORT_TTL_MS: u64 = 300;
/// Where each writer leaves its sync counter.
const SYNC: &str = "sync";

/// A source holding [`seed_commands`] keys, with keyspace notifications on.
fn live_source() -> Server {
    let source = Server::start();
    let mut c = source.client();
    c.pipeline(&seed_commands(""));
    set_events(&mut c, "KA");
    source
}

/// `rump --live` from `source` to `target` with `extra` options, `--json`.
fn start_live(source: &Server, target: &Server, extra: &[&str]) -> LiveRun {
    let (from, to) = (source.url(), target.url());
    let mut args = vec!["-from", &from, "-to", &to, "--live", "--json"];
    args.extend_from_slice(extra);
    LiveRun::start(&args)
}

/// Waits until no key under `pattern` is left on the server: the short
/// TTLs have run out (a SCAN also expires what it meets).
fn wait_expired(server: &Server, pattern: &str) {
    let deadline = Instant::now() + WITHIN;
    let mut c = server.client();
    while !c.keys_matching(pattern).is_empty() {
        assert!(Instant::now() < deadline, "keys {pattern} never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops `rump` with `sig` and checks the normal end of a live sync: exit
/// 0, the summary says the signal.
fn stop(rump: LiveRun, sig: &str) -> Run {
    rump.signal(sig);
    let run = rump.wait(WITHIN);
    run.success();
    assert!(
        run.stdout.contains("\"interrupted\":true"),
        "{}",
        run.stdout
    );
    run
}

/// A target, a writer on `source`, and a `rump --live` into the target
/// that has finished its scan and only follows changes.
fn following(source: &Server) -> (Server, Writer, LiveRun) {
    let target = Server::start();
    let writer = Writer::start(source.port, false);
    let mut rump = start_live(source, &target, &[]);
    rump.wait_for(SCAN_COMPLETE, WITHIN);
    (target, writer, rump)
}

/// A last write, acknowledged just before SIGINT, then the end of the run
/// ([`stop`]): the write is on the target if the ends compare equal.
fn last_word_then_stop(mut writer: Writer, rump: LiveRun) -> Run {
    writer.send(&["SET last:word now".into()]);
    writer.sync(SYNC, WITHIN);
    let run = stop(rump, "INT");
    writer.finish();
    run
}

/// The writer runs during the scan (paced to last seconds) and after it:
/// new keys, changed values of every type, deletions, short TTLs that
/// expire, RENAME and MOVE. After SIGINT the target equals the source key
/// by key (payloads by DUMP, expiries within a second), and the counts say
/// changes were applied and deleted.
#[test]
fn a_writer_during_and_after_the_scan_ends_with_equal_ends() {
    let source = live_source();
    let target = Server::start();
    let mut writer = Writer::start(source.port, false);
    // About 12k keys at 3000 keys/s: the scan lasts about 4 s.
    let mut rump = start_live(&source, &target, &["--rate", "3000"]);

    // During the scan: two rounds spread over a second and a half.
    let mut during = changes("", 0, true, SHORT_TTL_MS);
    during.extend(changes("", 1, true, SHORT_TTL_MS));
    writer.spread(&during, 6, Duration::from_millis(250));
    writer.sync(SYNC, WITHIN);
    assert!(
        !rump.stderr().contains(SCAN_COMPLETE),
        "the scan was over before the writer was done: the writes did not land mid-scan\n{}",
        rump.stderr()
    );

    // After the scan: two more rounds.
    rump.wait_for(SCAN_COMPLETE, WITHIN);
    let mut after = changes("", 2, true, SHORT_TTL_MS);
    after.extend(changes("", 3, true, SHORT_TTL_MS));
    writer.spread(&after, 4, Duration::from_millis(100));
    writer.sync(SYNC, WITHIN);
    wait_expired(&source, "ttl:*");
    // Acknowledged by the source before the signal: rump must apply them.
    writer.send(&["SET last:word now".into(), "DEL s:0".into()]);
    writer.sync(SYNC, WITHIN);

    let run = stop(rump, "INT");
    writer.finish();
    assert_same_data(&source, &target);
    let mut c = target.client();
    assert_eq!(
        c.run(&["GET", "last:word"]).as_bulk().map(|b| b.to_vec()),
        Some(b"now".to_vec())
    );
    // MOVE took keys to db 1 of the source; rump copies db 0 only.
    assert_eq!(c.int(&["EXISTS", "set:1000"]), 0);
    assert!(source.client().keys_matching("renamed:*").len() == 4 * crate::util::live::PER_ROUND);

    let f = |name| run.json_field(name);
    // Every round changes 100 keys of 12 kinds and deletes 100 of 4 (the
    // moved, renamed-away, deleted and emptied), plus the expired ones.
    assert!(f("live_applied") >= 1000.0, "{}", run.stdout);
    assert!(f("live_deleted") >= 400.0, "{}", run.stdout);
    assert_eq!(f("live_pending"), 0.0, "{}", run.stdout);
    assert_eq!(f("failed"), 0.0, "{}", run.stdout);
    assert_eq!(f("rescans"), 0.0, "{}", run.stdout);
    assert!(f("copied") >= (PER_TYPE * 5) as f64, "{}", run.stdout);
}

/// Writes the source acknowledged before the signal are applied even when
/// rump had not read their notifications yet: rump is frozen (SIGSTOP)
/// while the writer makes 5,000 new keys, gets SIGINT while frozen, and is
/// thawed; it reads the notifications up to a last PING before it stops.
#[test]
fn writes_acknowledged_before_the_signal_are_applied_even_if_unread() {
    let source = Server::start();
    set_events(&mut source.client(), "KA");
    let (target, mut writer, rump) = following(&source);
    rump.signal("STOP");
    let lines: Vec<String> = (0..5000).map(|i| format!("SET fresh:{i} v{i}")).collect();
    writer.send(&lines);
    writer.sync(SYNC, WITHIN);
    rump.signal("INT");
    rump.signal("CONT");
    let run = rump.wait(WITHIN);
    writer.finish();
    run.success();
    assert_eq!(target.client().dbsize(), 5001, "{}", run.stderr);
    assert_same_data(&source, &target);
    assert!(run.json_field("live_applied") >= 5000.0, "{}", run.stdout);
}

/// Without keyspace notifications, `--live` refuses to start: exit 1, one
/// line saying how to enable them, nothing written to the target, and the
/// setting left alone.
#[test]
fn without_notifications_live_refuses_and_writes_nothing() {
    let source = Server::start();
    let target = Server::start();
    let mut c = source.client();
    c.ok(&["SET", "a", "1"]);
    set_events(&mut c, "Ex");
    let run = rump(&["-from", &source.url(), "-to", &target.url(), "--live"]);
    run.expect_code(1);
    let line = run.error_line();
    assert!(
        line.contains("CONFIG SET notify-keyspace-events KA")
            && line.contains("--live-enable-events"),
        "{line}"
    );
    assert!(
        line.contains(&format!("127.0.0.1:{}", source.port)),
        "{line}"
    );
    assert_eq!(target.client().dbsize(), 0);
    assert_eq!(target.client().command_calls("restore"), 0);
    assert_eq!(events_setting(&mut c), "Ex");
}

/// `--live-enable-events` turns notifications on for the run and puts the
/// old value back at its end: after SIGINT and after SIGTERM.
#[test]
fn live_enable_events_puts_the_setting_back_after_a_signal() {
    for sig in ["INT", "TERM"] {
        let source = Server::start();
        let target = Server::start();
        let mut c = source.client();
        c.pipeline(&seed_commands(""));
        set_events(&mut c, "Ex");
        let (from, to) = (source.url(), target.url());
        let mut rump =
            LiveRun::start(&["-from", &from, "-to", &to, "--live-enable-events", "--json"]);
        rump.wait_for(SCAN_COMPLETE, WITHIN);
        let during = events_setting(&mut c);
        assert!(during.contains('A') && during.contains('K'), "{during}");
        c.ok(&["SET", "while:live", "1"]);
        let run = stop(rump, sig);
        assert!(
            run.stderr
                .contains("notify-keyspace-events is back to \"xE\"")
                || run
                    .stderr
                    .contains("notify-keyspace-events is back to \"Ex\""),
            "{}",
            run.stderr
        );
        assert_eq!(events_setting(&mut c), "Ex", "after SIG{sig}");
        assert_same_data(&source, &target);
    }
}

/// The target dies mid-run: rump gives up (exit 1, naming the target) and
/// still puts `notify-keyspace-events` back.
#[test]
fn live_enable_events_puts_the_setting_back_after_a_failure() {
    let source = Server::start();
    let mut target = Server::start();
    let mut c = source.client();
    c.pipeline(&seed_commands(""));
    let (from, to) = (source.url(), target.url());
    let mut rump = LiveRun::start(&[
        "-from",
        &from,
        "-to",
        &to,
        "--live-enable-events",
        "--timeout",
        "1",
    ]);
    rump.wait_for(SCAN_COMPLETE, WITHIN);
    assert!(events_setting(&mut c).contains('K'));
    target.kill();
    // A change to copy makes the dead target felt.
    c.ok(&["SET", "after:kill", "1"]);
    let run = rump.wait(WITHIN);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("target 127.0.0.1:{}", target.port)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("notify-keyspace-events is back to \"\""),
        "{}",
        run.stderr
    );
    assert_eq!(events_setting(&mut c), "");
}

/// The notification connection is killed (`CLIENT KILL TYPE pubsub`):
/// rump says what it cannot replay, rescans, and changes written after the
/// kill still arrive.
#[test]
fn a_lost_notification_connection_is_said_and_rescanned() {
    let source = live_source();
    let (target, mut writer, mut rump) = following(&source);
    writer.send(&changes("", 0, true, SHORT_TTL_MS));
    writer.sync(SYNC, WITHIN);

    let killed = source.client().int(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, 1, "one notification connection");
    rump.wait_for("notification connection was lost", WITHIN);
    writer.send(&changes("", 1, true, SHORT_TTL_MS));
    writer.sync(SYNC, WITHIN);
    wait_expired(&source, "ttl:*");
    // The rescan is done, and the change after it followed.
    let deadline = Instant::now() + WITHIN;
    while target.client().int(&["EXISTS", "new:1:99"]) == 0 {
        assert!(
            Instant::now() < deadline,
            "changes after the kill never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = last_word_then_stop(writer, rump);
    assert!(run.json_field("rescans") >= 1.0, "{}", run.stdout);
    assert!(
        !run.stderr.contains("  "),
        "a notice with a run of spaces:\n{}",
        run.stderr
    );
    assert_same_data(&source, &target);
}

/// FLUSHDB on the source raises no key event: rump says it saw a flush,
/// deletes nothing on the target, and rescans; keys written after the
/// flush (at once, as a busy application would) still arrive.
#[test]
fn a_flush_of_the_source_is_said_and_rescanned() {
    let source = live_source();
    let (target, mut writer, mut rump) = following(&source);
    // Let a DBSIZE sample see the full database first.
    std::thread::sleep(Duration::from_millis(1500));

    let mut lines = vec!["FLUSHDB".to_string()];
    lines.extend((0..200).map(|i| format!("SET after:flush:{i} v")));
    writer.send(&lines);
    writer.sync(SYNC, WITHIN);
    rump.wait_for("flushed", WITHIN);
    let run = last_word_then_stop(writer, rump);
    assert!(run.json_field("rescans") >= 1.0, "{}", run.stdout);
    assert!(
        run.stderr.contains("deletes none of them"),
        "{}",
        run.stderr
    );
    // Every key the source has now is on the target, equal ...
    let ours = snapshot_matching(source.port, "*");
    assert_eq!(
        ours.len(),
        202,
        "200 after the flush, the sync key, last:word"
    );
    let keys: Vec<Vec<u8>> = ours.iter().map(|e| e.0.clone()).collect();
    let theirs = crate::util::snapshot_keys(&mut target.client(), keys);
    assert_same_snapshots(&ours, &theirs);
    // ... and the flushed ones are still there: rump deleted none.
    assert!(target.client().dbsize() > (PER_TYPE * 5) as i64);
}

/// `--live` with what it cannot follow or apply is a usage error.
#[test]
fn live_with_what_it_cannot_follow_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("d.rump");
    let file = file.to_str().expect("utf-8 path");
    let ck = dir.path().join("ck");
    let ck = ck.to_str().expect("utf-8 path");
    let (a, b) = ("redis://127.0.0.1:1", "redis://127.0.0.1:2");
    for (args, says) in [
        (vec!["-from", file, "-to", b, "--live"], "dump file"),
        (vec!["-from", a, "-to", file, "--live"], "dump file"),
        (vec!["-from", a, "-to", "-", "--live"], "dump file"),
        (
            vec!["-from", a, "-to", b, "--live", "--no-replace"],
            "--no-replace",
        ),
        (
            vec!["-from", a, "-to", b, "--live", "--checkpoint", ck],
            "checkpoint",
        ),
        (
            vec!["-from", a, "-to", b, "--live", "--type", "hash"],
            "--type",
        ),
        (
            vec!["-from", a, "-to", file, "--live-enable-events"],
            "dump file",
        ),
    ] {
        let run = rump(&args);
        run.expect_code(2);
        let line = run.error_line();
        assert!(
            line.starts_with("rump: --live") && line.contains(says),
            "{args:?}: {line}"
        );
    }
}

/// A cluster source: every master is followed, so writes spread over the
/// masters during the scan and after it all arrive (the shared cluster,
/// keys under a prefix of this test's own and `--match`).
#[test]
fn a_cluster_source_is_followed_on_every_master() {
    let cluster = shared_cluster();
    let prefix = "live:";
    // Left on: notifications only cost the shared cluster a little work,
    // and no other test reads them.
    for master in &cluster.masters {
        set_events(&mut master.client(), "KA");
    }
    let seed: Vec<_> = (0..3000)
        .map(|i| crate::cmd!("HSET", format!("{prefix}h:{i}"), "f", i.to_string()))
        .collect();
    cluster.pipeline(&seed);
    let target = Server::start();
    let pattern = format!("{prefix}*");
    let seed_url = cluster.seed_url();
    let to = target.url();
    let mut rump = LiveRun::start(&[
        "-from", &seed_url, "-to", &to, "--live", "--json", "--match", &pattern, "--rate", "1500",
    ]);
    let mut writer = Writer::start(cluster.masters[0].port, true);
    let sync = format!("{prefix}sync");
    let round = |r: usize| -> Vec<String> {
        (0..300)
            .flat_map(|i| {
                let j = r * 300 + i;
                [
                    format!("SET {prefix}new:{r}:{i} v"),
                    format!("HSET {prefix}h:{j} r {r}"),
                    format!("DEL {prefix}h:{}", 1500 + j),
                    format!("SET {prefix}ttl:{r}:{i} v PX {SHORT_TTL_MS}"),
                ]
            })
            .collect()
    };
    writer.spread(&round(0), 4, Duration::from_millis(150));
    writer.sync(&sync, WITHIN);
    assert!(
        !rump.stderr().contains(SCAN_COMPLETE),
        "the writes did not land mid-scan"
    );
    rump.wait_for(SCAN_COMPLETE, WITHIN);
    writer.spread(&round(1), 2, Duration::from_millis(100));
    writer.sync(&sync, WITHIN);
    let expired = Instant::now() + WITHIN;
    while !cluster.snapshot(&format!("{prefix}ttl:*")).is_empty() {
        assert!(Instant::now() < expired, "short TTLs never expired");
        std::thread::sleep(Duration::from_millis(50));
    }

    let run = stop(rump, "INT");
    writer.finish();
    let ours = cluster.snapshot(&pattern);
    assert_same_snapshots(&ours, &snapshot_matching(target.port, "*"));
    // The new keys of the last round are on every master.
    for master in &cluster.masters {
        let n = master
            .client()
            .keys_matching(&format!("{prefix}new:1:*"))
            .len();
        assert!(
            n > 30,
            "master {} holds {n} of the last round's keys",
            master.port
        );
    }
    assert!(run.json_field("live_applied") >= 600.0, "{}", run.stdout);
    assert!(run.json_field("live_deleted") >= 600.0, "{}", run.stdout);
}
