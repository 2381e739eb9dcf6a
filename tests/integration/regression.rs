//! One test per fixed bug, named `r<issue>_…`.

use crate::util::{rump, rump_env, Flavor, Server};

/// A damaged dump stopped the target at once, dropping verified blocks that
/// were already read and leaving the summary unreconciled (issue 4, found by
/// the dump-file tests: a file cut just before its end marker restored about
/// 40% of its keys). A failing source now only ends the stream.
#[test]
fn r4_every_verified_block_before_the_damage_is_restored() {
    let server = Server::start();
    server
        .client()
        .ok(&["DEBUG", "POPULATE", "100000", "key", "16"]);
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.rump");
    let cut = dir.path().join("cut.rump");
    rump(&[
        "-from",
        &server.url(),
        "-to",
        whole.to_str().unwrap(),
        "-silent",
    ])
    .success();
    let bytes = std::fs::read(&whole).unwrap();
    // Everything but the 13-byte end marker: every block is intact.
    std::fs::write(&cut, &bytes[..bytes.len() - 13]).unwrap();

    let run = rump(&[
        "-from",
        cut.to_str().unwrap(),
        "-to",
        &server.url_db(1),
        "--json",
    ]);
    run.expect_code(1);
    assert!(run.stderr.contains("missing end marker"), "{}", run.stderr);
    run.assert_reconciles();
    assert_eq!(run.json_field("copied"), 100000.0);
    let mut db1 = server.client();
    db1.ok(&["SELECT", "1"]);
    assert_eq!(db1.dbsize(), 100000);
}

/// A server that echoes the password back in its error had it printed
/// verbatim (issue 8): with `AUTH` renamed away, Redis answers `ERR unknown
/// command 'AUTH', with args beginning with: 'hunter2'`, and rump printed
/// that on stderr and in `--json`. Every error line is now masked, whether
/// the password came from the URI or the environment, and so is the
/// truncated echo of a long one.
#[test]
fn r8_a_password_echoed_by_the_server_is_never_printed() {
    let source = Server::start_with(Flavor::Redis, &["--rename-command", "AUTH", ""]);
    let target = Server::start();
    let long = "L0ngPassw0rd-".repeat(20);
    let from = |password: &str| format!("redis://:{password}@127.0.0.1:{}", source.port);
    let env_from = format!("redis://127.0.0.1:{}", source.port);
    for (args, env, password) in [
        (vec![from("hunter2"), target.url()], vec![], "hunter2"),
        (
            vec![env_from, target.url()],
            vec![("RUMP_FROM_PASSWORD", "hunter3")],
            "hunter3",
        ),
        (vec![from(&long), target.url()], vec![], &long[..16]),
    ] {
        let run = rump_env(&["-from", &args[0], "-to", &args[1], "--json"], &env);
        run.expect_code(1);
        assert!(run.stderr.contains("unknown command"), "{}", run.stderr);
        assert!(run.stderr.contains("***"), "{}", run.stderr);
        assert!(!run.stderr.contains(password), "{}", run.stderr);
        assert!(run.stdout.contains("***"), "{}", run.stdout);
        assert!(!run.stdout.contains(password), "{}", run.stdout);
    }
}
