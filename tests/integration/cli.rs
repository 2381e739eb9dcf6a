//! Command line: help, version, usage errors and their exit codes.

use crate::util::rump;

#[test]
fn help_and_version_exit_zero() {
    for flag in ["-h", "--help", "-help"] {
        let run = rump(&[flag]);
        run.success();
        for needle in [
            "-from",
            "-to",
            "--no-ttl",
            "--no-replace",
            "--match",
            "--rate",
            "--timeout SECONDS",
            "--checkpoint FILE",
            "--json",
            "EXIT STATUS",
        ] {
            assert!(run.stdout.contains(needle), "{flag}: {needle}");
        }
    }
    let run = rump(&["-V"]);
    run.success();
    assert!(run.stdout.starts_with("rump "), "{}", run.stdout);
}

#[test]
fn usage_errors_exit_two_with_one_line() {
    for args in [
        &["--bogus"][..],
        &["-from", "redis://a"],
        &["-to", "redis://a"],
        &["-from", "a.rump", "-to", "b.rump"],
        &["-from", "redis://h:99999", "-to", "redis://b"],
        &["-from", "redis://h/x", "-to", "redis://b"],
        &["-from", "http://h", "-to", "redis://b"],
        &["-from", "redis://a", "-to", "redis://b", "--pipeline", "0"],
        &["-from", "127.0.0.1:6379", "-to", "redis://b"],
        &["-from", "redis:/a", "-to", "redis://b"],
        &["-from", "redis://a", "-to", "redis://b", "--type", "strng"],
        &["-from", "redis://a", "-to", "redis://b", "--timeout", "0"],
        &["-from", "a.rump", "-to", "redis://b", "--checkpoint", "ck"],
        &["-from", "redis://a", "-to", "x.rump", "--format", "xml"],
        &["-from", "redis://a", "-to", "-", "--json"],
    ] {
        let run = rump(args);
        run.expect_code(2);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("rump: "), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_password_never_appears_in_a_usage_error() {
    let run = rump(&["-from", "http://user:hunter2@h", "-to", "redis://b"]);
    run.expect_code(2);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn a_database_cannot_be_copied_onto_itself() {
    let server = crate::util::Server::start();
    server.client().ok(&["SET", "k", "v"]);
    let other_name = format!("redis://localhost:{}/0", server.port);
    let run = rump(&["-from", &server.url(), "-to", &other_name]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("are the same database"),
        "{}",
        run.stderr
    );
    // Another db of the same server is a different database.
    rump(&["-from", &server.url(), "-to", &server.url_db(1)]).success();
}

/// Each usage error names what it is about and says what to write instead.
#[test]
fn usage_errors_name_the_option_and_suggest_a_fix() {
    let base = ["-from", "redis://127.0.0.1:1", "-to", "redis://127.0.0.1:2"];
    for (extra, expected) in [
        (
            &["--pipeline", "0"][..],
            "rump: --pipeline: must be greater than 0 (see rump --help)",
        ),
        (
            &["-scan-count", "ten"],
            "rump: --scan-count: \"ten\" is not a whole number (see rump --help)",
        ),
        (
            &["--rate=-5"],
            "rump: --rate: must be greater than 0 (see rump --help)",
        ),
        (
            &["--pipeline", "1000001"],
            "rump: --pipeline: 1000001 is too large (at most 1,000,000) (see rump --help)",
        ),
        (
            &["--scan-count", "1000001"],
            "rump: --scan-count: 1000001 is too large (at most 1,000,000) (see rump --help)",
        ),
        (
            &["-timeout", "0"],
            "rump: --timeout: must be greater than 0 (see rump --help)",
        ),
        (
            &["--timeout", "86401"],
            "rump: --timeout: must be at most 86400 seconds (one day) (see rump --help)",
        ),
        (
            &["--timeout", "inf"],
            "rump: --timeout: must be at most 86400 seconds (one day) (see rump --help)",
        ),
        (
            &["--timeout", "NaN"],
            "rump: --timeout: NaN is not a number of seconds (see rump --help)",
        ),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let run = rump(&args);
        run.expect_code(2);
        assert_eq!(run.stderr.trim_end(), expected, "{args:?}");
    }
    for (args, needles) in [
        (
            &["-from", "redis://a", "-to", "redis://b", "--type", "strng"][..],
            &["rump: --type: unknown type \"strng\" (did you mean string?)", "string, list, set, zset, hash, stream"][..],
        ),
        (&["-from", "redis://a", "-to", "redis://b", "--type", "sorted-set"], &["(did you mean zset?)"]),
        (&["-from", "redis://a", "-to", "redis://b", "--type", "json"], &["unknown type \"json\""]),
        (
            &["-from", "127.0.0.1:6379", "-to", "redis://b"],
            &["rump: -from: \"127.0.0.1:6379\" looks like a server address: write redis://127.0.0.1:6379 (or ./127.0.0.1:6379 for a file of that name)"],
        ),
        (&["-from", "redis://a", "-to", "localhost:6380"], &["rump: -to: ", "write redis://localhost:6380"]),
        (&["-from", "redis://a", "-to", "[::1]:6379"], &["write redis://[::1]:6379"]),
        (&["-from", "cache.example.com:6379", "-to", "x.rump"], &["write redis://cache.example.com:6379"]),
        (&["-from", "redis:/host", "-to", "redis://b"], &["rump: -from: ", "did you mean redis://host?"]),
        (&["-from", "redis:host", "-to", "redis://b"], &["did you mean redis://host?"]),
        (&["-from", "redis://a", "-to", "rediss:/h"], &["rump: -to: ", "did you mean rediss://h?"]),
        (&["-from", "unix:/tmp/r.sock", "-to", "redis://b"], &["did you mean unix:///tmp/r.sock?"]),
        (
            &["-from", "x.rump", "-to", "redis://b", "--checkpoint", "ck"],
            &["rump: --checkpoint records a server source's SCAN progress; -from is a dump file"],
        ),
    ] {
        let run = rump(args);
        run.expect_code(2);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        let line = run.stderr.trim_end();
        assert!(!line.ends_with('.'), "{line}");
        for needle in needles {
            assert!(line.contains(needle), "{args:?}: {line}");
        }
    }
}

/// The new options are accepted, in both spellings, by a real run; a module
/// type name is passed on (it matches nothing here, which is not an error).
#[test]
fn timeout_checkpoint_and_module_types_are_accepted() {
    let server = crate::util::Server::start();
    server.client().ok(&["SET", "k", "v"]);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("run.ckpt");
    let run = rump(&[
        "-from",
        &server.url(),
        "-to",
        &server.url_db(1),
        "-timeout",
        "0.5",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--json",
    ]);
    run.success();
    assert_eq!(run.json_field("copied"), 1.0);
    let run = rump(&[
        "-from",
        &server.url(),
        "-to",
        &server.url_db(2),
        "--type=ReJSON-RL",
        "--timeout=5",
        "--json",
    ]);
    run.success();
    assert_eq!(run.json_field("scanned"), 0.0);
}

/// A file whose name looks like `host:port` is still a file when written
/// with a '/'.
#[test]
fn a_path_with_a_slash_is_a_file_whatever_its_name() {
    let server = crate::util::Server::start();
    server.client().ok(&["SET", "k", "v"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("127.0.0.1:6379");
    rump(&[
        "-from",
        &server.url(),
        "-to",
        file.to_str().unwrap(),
        "-silent",
    ])
    .success();
    assert!(file.is_file());
    let run = rump(&[
        "-from",
        file.to_str().unwrap(),
        "-to",
        &server.url_db(1),
        "--json",
    ]);
    run.success();
    assert_eq!(run.json_field("copied"), 1.0);
}

/// A password with a literal '/' in the URI authenticates (it used to be cut
/// at the '/' and reported as a bad port, with the password in the message).
#[test]
fn a_password_with_a_slash_authenticates() {
    let server = crate::util::Server::start_with(
        crate::util::Flavor::Redis,
        &["--requirepass", "Sup3r/Secr3t"],
    );
    let mut c = server.client();
    c.ok(&["AUTH", "Sup3r/Secr3t"]);
    c.ok(&["SET", "k", "v"]);
    let url = format!("redis://default:Sup3r/Secr3t@127.0.0.1:{}", server.port);
    let run = rump(&["-from", &url, "-to", &format!("{url}/1"), "--json"]);
    run.success();
    assert_eq!(run.json_field("copied"), 1.0);
    assert!(!run.stderr.contains("Secr3t"), "{}", run.stderr);
}
