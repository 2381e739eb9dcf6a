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
