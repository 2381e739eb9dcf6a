//! Failures: each gives one clear line naming the endpoint (never its
//! password), the documented exit status, and no panic.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use rump::error::Role;

use crate::util::{free_port, rump, rump_env, rump_spawn, signal, wait_run, Flavor, Run, Server};

/// The error line: the last stderr line that is not the summary.
fn error_line(run: &Run) -> String {
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
        .lines()
        .rfind(|l| !l.starts_with("rump: scanned"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn connection_refused_names_the_endpoint() {
    let port = free_port();
    let target = Server::start();
    let run = rump(&[
        "-from",
        &format!("redis://127.0.0.1:{port}"),
        "-to",
        &target.url(),
    ]);
    run.expect_code(1);
    assert_eq!(
        error_line(&run),
        format!("rump: source 127.0.0.1:{port}: cannot connect: connection refused")
    );
    let source = Server::start();
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &format!("redis://127.0.0.1:{port}/2"),
    ]);
    run.expect_code(1);
    assert_eq!(
        error_line(&run),
        format!("rump: target 127.0.0.1:{port}/2: cannot connect: connection refused")
    );
}

#[test]
fn unknown_host_is_a_resolution_error() {
    let target = Server::start();
    let run = rump(&[
        "-from",
        "redis://no-such-host.invalid:6379",
        "-to",
        &target.url(),
    ]);
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.starts_with(
            "rump: source no-such-host.invalid:6379: cannot connect: cannot resolve host"
        ),
        "{line}"
    );
}

#[test]
fn authentication_with_uri_env_and_acl_users() {
    let source = Server::start_with(Flavor::Redis, &["--requirepass", "s3cr@t:pw"]);
    let target = Server::start();
    let mut admin = source.client();
    admin.ok(&["AUTH", "s3cr@t:pw"]);
    admin.ok(&["SET", "k", "v"]);
    admin.ok(&["ACL", "SETUSER", "alice", "on", ">alicepw", "~*", "+@all"]);
    let port = source.port;

    // Percent-encoded password in the URI.
    rump(&[
        "-from",
        &format!("redis://:s3cr%40t%3Apw@127.0.0.1:{port}"),
        "-to",
        &target.url(),
    ])
    .success();
    // From the environment.
    rump_env(
        &[
            "-from",
            &format!("redis://127.0.0.1:{port}"),
            "-to",
            &target.url(),
        ],
        &[("RUMP_FROM_PASSWORD", "s3cr@t:pw")],
    )
    .success();
    // An ACL user.
    rump(&[
        "-from",
        &format!("redis://alice:alicepw@127.0.0.1:{port}"),
        "-to",
        &target.url(),
    ])
    .success();

    // Wrong password: refused, and the password is never printed.
    let run = rump(&[
        "-from",
        &format!("redis://:hunter2@127.0.0.1:{port}"),
        "-to",
        &target.url(),
        "--json",
    ]);
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.starts_with(&format!(
            "rump: source 127.0.0.1:{port}: authentication failed: WRONGPASS"
        )),
        "{line}"
    );
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
    assert!(
        run.stdout.contains("\"error\":\"source 127.0.0.1"),
        "{}",
        run.stdout
    );

    // No password at all: says where to give one.
    let run = rump(&[
        "-from",
        &format!("redis://127.0.0.1:{port}"),
        "-to",
        &target.url(),
    ]);
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.contains("authentication failed: NOAUTH") && line.contains("RUMP_FROM_PASSWORD"),
        "{line}"
    );
}

#[test]
fn a_db_the_server_does_not_have_is_refused() {
    let source = Server::start();
    let target = Server::start();
    let run = rump(&["-from", &source.url_db(99), "-to", &target.url()]);
    run.expect_code(1);
    let line = error_line(&run);
    assert_eq!(
        line,
        format!(
            "rump: source 127.0.0.1:{}/99: SELECT 99 failed: ERR DB index is out of range",
            source.port
        )
    );
}

#[test]
fn a_full_target_stops_the_run_with_out_of_memory() {
    let source = Server::start();
    let target = Server::start_with(
        Flavor::Redis,
        &["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"],
    );
    source
        .client()
        .ok(&["DEBUG", "POPULATE", "20000", "key", "1000"]);
    let run = rump(&["-from", &source.url(), "-to", &target.url(), "--json"]);
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.starts_with(&format!(
            "rump: target 127.0.0.1:{}: RESTORE \"key:",
            target.port
        )),
        "{line}"
    );
    assert!(
        line.contains("OOM") && line.contains("out of memory"),
        "{line}"
    );
    let copied = run.json_field("copied");
    assert!(copied < 20000.0);
    assert_eq!(
        target.client().dbsize() as f64,
        copied,
        "the count says exactly what landed"
    );
}

#[test]
fn a_read_only_replica_is_refused_as_target() {
    let source = Server::start();
    let primary = Server::start();
    let replica = Server::start_with(
        Flavor::Redis,
        &["--replicaof", "127.0.0.1", &primary.port.to_string()],
    );
    source.client().ok(&["SET", "k", "v"]);
    let run = rump(&["-from", &source.url(), "-to", &replica.url()]);
    run.expect_code(1);
    assert_eq!(
        error_line(&run),
        format!("rump: target 127.0.0.1:{}: is a read-only replica (role:slave); point -to at the primary", replica.port)
    );
    // A replica is a fine source.
    rump(&["-from", &replica.url(), "-to", &source.url()]).success();
}

/// Kills one end a moment into a slow run, and returns how it ended.
fn kill_mid_run(which: Role) -> (Run, u16, u64) {
    let mut source = Server::start();
    let mut target = Server::start();
    source.client().ok(&["DEBUG", "POPULATE", "5000"]);
    let args = [
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--rate",
        "1000",
        "--json",
        // The killed server does not come back: give up on it quickly.
        "--timeout",
        "1",
    ];
    let child = rump_spawn(&args);
    std::thread::sleep(Duration::from_millis(700));
    let (killed, survivor) = match which {
        Role::Source => (&mut source, &target),
        Role::Target => (&mut target, &source),
    };
    killed.kill();
    let run = wait_run(child, "rump (a server killed)", Duration::from_secs(20));
    let landed = match which {
        Role::Source => survivor.client().dbsize() as u64,
        Role::Target => 0,
    };
    (run, killed.port, landed)
}

#[test]
fn a_source_that_dies_mid_run_fails_the_run_after_writing_what_it_read() {
    let (run, port, landed) = kill_mid_run(Role::Source);
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.starts_with(&format!("rump: source 127.0.0.1:{port}: ")),
        "{line}"
    );
    assert!(
        line.contains("closed the connection") || line.contains("reset"),
        "{line}"
    );
    // Keys found but not yet read when the source died are in no count:
    // only a complete run reconciles. What was read was all written.
    assert_eq!(landed as f64, run.json_field("copied"));
}

#[test]
fn a_target_that_dies_mid_run_fails_the_run() {
    let (run, port, _) = kill_mid_run(Role::Target);
    run.expect_code(1);
    let line = error_line(&run);
    assert!(
        line.starts_with(&format!("rump: target 127.0.0.1:{port}: ")),
        "{line}"
    );
}

#[test]
fn sigint_and_sigterm_stop_cleanly_with_the_summary_so_far() {
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let source = Server::start();
        let target = Server::start();
        source.client().ok(&["DEBUG", "POPULATE", "5000"]);
        let child = rump_spawn(&[
            "-from",
            &source.url(),
            "-to",
            &target.url(),
            "--rate",
            "1000",
            "--json",
        ]);
        std::thread::sleep(Duration::from_millis(600));
        signal(child.id(), sig);
        let run = wait_run(child, "rump (signalled)", Duration::from_secs(10));
        run.expect_code(code);
        assert!(
            run.stderr.contains(&format!("interrupted by SIG{sig}")),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout.contains("\"interrupted\":true"),
            "{}",
            run.stdout
        );
        let copied = run.json_field("copied");
        assert!(copied > 0.0 && copied < 5000.0, "{copied}");
        assert_eq!(
            target.client().dbsize() as f64,
            copied,
            "every write in flight was accounted for"
        );
    }
}

#[test]
fn a_hostile_peer_is_a_protocol_error_not_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let target = Server::start();
    let run = rump(&[
        "-from",
        &format!("redis://127.0.0.1:{port}"),
        "-to",
        &target.url(),
    ]);
    run.expect_code(1);
    assert_eq!(
        error_line(&run),
        format!(
            "rump: source 127.0.0.1:{port}: protocol error: not a Redis server: it answered like \
             an HTTP server (\"HTTP/1.1 400 Bad Request\")"
        )
    );
    let _ = peer.join();
}

#[test]
fn silent_success_prints_nothing_and_progress_goes_to_stderr() {
    let source = Server::start();
    let target = Server::start();
    source.client().ok(&["DEBUG", "POPULATE", "100"]);
    let run = rump(&["-from", &source.url(), "-to", &target.url(), "-silent"]);
    run.success();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = rump(&["-from", &source.url(), "-to", &target.url()]);
    run.success();
    assert!(run.stdout.is_empty());
    let summary = run.stderr.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("rump: scanned 100, copied 100, skipped 0, vanished 0, failed 0,"),
        "{summary}"
    );
}

#[test]
fn keys_the_target_refuses_fail_alone_and_the_run_exits_one() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    for i in 0..5 {
        src.ok(&["SET", &format!("allowed:{i}"), "v"]);
        src.ok(&["SET", &format!("denied:{i}"), "v"]);
    }
    // A user that may write allowed:* only: RESTORE of denied:* is refused per key.
    target.client().ok(&[
        "ACL",
        "SETUSER",
        "writer",
        "on",
        ">pw",
        "~allowed:*",
        "+@all",
    ]);
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &format!("redis://writer:pw@127.0.0.1:{}", target.port),
        "--json",
    ]);
    run.expect_code(1);
    run.assert_reconciles();
    assert_eq!(run.json_field("copied"), 5.0);
    assert_eq!(run.json_field("failed"), 5.0);
    let refused: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("NOPERM"))
        .collect();
    assert_eq!(refused.len(), 5, "{}", run.stderr);
    assert!(
        refused[0].starts_with(&format!(
            "rump: target 127.0.0.1:{}: RESTORE \"denied:",
            target.port
        )),
        "{}",
        refused[0]
    );
    assert!(
        run.stderr.contains("5 keys were refused by the target"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(">pw") && !run.stderr.contains(":pw@"));
    assert_eq!(target.client().keys().len(), 5);
}

#[test]
fn without_a_terminal_progress_is_a_plain_periodic_line() {
    let source = Server::start();
    let target = Server::start();
    source.client().ok(&["DEBUG", "POPULATE", "3000"]);
    // 3000 keys at 500 keys/s: about 6 s, so at least one 5-second progress line.
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--rate",
        "500",
    ]);
    run.success();
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("/3,000 keys ("))
        .collect();
    assert!(!progress.is_empty(), "{}", run.stderr);
    assert!(
        progress[0].contains("keys/s") && progress[0].contains("ETA"),
        "{}",
        progress[0]
    );
    assert!(
        !run.stderr.contains('\r'),
        "no live-line control characters off a terminal"
    );
}

#[test]
fn on_a_terminal_progress_is_one_live_line() {
    let source = Server::start();
    let target = Server::start();
    source.client().ok(&["DEBUG", "POPULATE", "600"]);
    // script(1) gives rump a pseudo-terminal, as an interactive shell would.
    let command = format!(
        "{} -from {} -to {} --rate 1000",
        crate::util::rump_bin().display(),
        source.url(),
        target.url()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // Redrawn in place: carriage return and erase-line, then the summary.
    assert!(text.contains("\r\x1b[Krump: "), "{text:?}");
    assert!(text.contains("/600 keys ("), "{text:?}");
    assert!(text.contains("rump: scanned 600, copied 600"), "{text:?}");
}
