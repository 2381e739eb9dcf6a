//! Expiry: absolute TTLs copied to the millisecond, persistent keys kept
//! persistent, `--no-ttl`, and keys that expire or vanish mid-run.

use std::time::Duration;

use crate::cmd;
use crate::util::{rump, rump_spawn, wait_run, Flavor, Server};

#[test]
fn ttls_are_copied_as_the_same_absolute_expiry() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.pipeline(&[
        cmd!("SET", "px", "v", "PX", "123456"),
        cmd!("SET", "ex", "v", "EX", "86400"),
        cmd!("SET", "exat", "v", "EXAT", "4102444800"),
        cmd!("HSET", "hash", "f", "v"),
        cmd!("PEXPIRE", "hash", "999999"),
        cmd!("SET", "persistent", "v"),
    ]);
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "-ttl",
        "--json",
    ]);
    run.success();
    let mut dst = target.client();
    for key in [&b"px"[..], b"ex", b"exat", b"hash"] {
        let expected = src.pexpiretime(key);
        assert!(expected > 0);
        assert_eq!(
            dst.pexpiretime(key),
            expected,
            "{}",
            String::from_utf8_lossy(key)
        );
    }
    assert_eq!(dst.pexpiretime(b"persistent"), -1);
}

#[test]
fn no_ttl_makes_every_key_persistent() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "a", "v", "PX", "100000"]);
    src.ok(&["SET", "b", "v"]);
    rump(&["-from", &source.url(), "-to", &target.url(), "--no-ttl"]).success();
    let mut dst = target.client();
    assert_eq!(dst.pexpiretime(b"a"), -1);
    assert_eq!(dst.pexpiretime(b"b"), -1);
    assert_eq!(dst.dbsize(), 2);
}

#[test]
fn keys_expiring_mid_run_are_counted_as_vanished_never_failed() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    let commands: Vec<_> = (0..400)
        .map(|i| cmd!("SET", format!("k{i}"), "v", "PX", "700"))
        .collect();
    src.pipeline(&commands);
    // 400 keys at 200 keys/s take 2 s; every key expires after 0.7 s.
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--rate",
        "200",
        "--json",
    ]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("scanned"), 400.0);
    assert_eq!(run.json_field("failed"), 0.0);
    let vanished = run.json_field("vanished");
    assert!(vanished >= 100.0, "vanished {vanished}: {}", run.stdout);
    assert!(run.json_field("copied") >= 50.0, "{}", run.stdout);
}

#[test]
fn keys_deleted_mid_run_are_counted_as_vanished() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["DEBUG", "POPULATE", "600"]);
    let child = rump_spawn(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--rate",
        "300",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(600));
    src.ok(&["FLUSHALL"]);
    let run = wait_run(child, "rump --rate 300", Duration::from_secs(20));
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("scanned"), 600.0);
    assert!(run.json_field("vanished") >= 100.0, "{}", run.stdout);
    assert_eq!(
        target.client().dbsize() as f64,
        run.json_field("copied"),
        "every copied key is on the target"
    );
}

#[test]
fn without_pexpiretime_ttls_are_read_as_pttl_and_stay_close() {
    // As on a server before 7.0, or a managed one that renamed the command.
    let source = Server::start_with(Flavor::Redis, &["--rename-command", "PEXPIRETIME", ""]);
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "a", "v", "PX", "600000"]);
    src.ok(&["SET", "b", "v"]);
    let before = now_ms();
    rump(&["-from", &source.url(), "-to", &target.url()]).success();
    let after = now_ms();
    let mut dst = target.client();
    let expires = dst.pexpiretime(b"a");
    // PTTL is relative: the copy expires 600 s after some instant of the run.
    assert!(
        expires >= before + 600_000 - 1000 && expires <= after + 600_000,
        "{expires} not within [{before}, {after}] + 600 s"
    );
    assert_eq!(dst.pexpiretime(b"b"), -1);
    let commands = src.commands_used();
    assert!(commands.contains(&"pttl".to_string()), "{commands:?}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn no_ttl_also_applies_when_restoring_a_dump() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "a", "v", "PX", "100000"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ttl.rump");
    let file = file.to_str().unwrap();
    rump(&["-from", &source.url(), "-to", file]).success();
    rump(&["-from", file, "-to", &target.url(), "--no-ttl"]).success();
    assert_eq!(target.client().pexpiretime(b"a"), -1);
}
