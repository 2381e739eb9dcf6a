//! `--dry-run` against real servers: a good pair passes with one line per
//! check and nothing written; a wrong password, a missing ACL permission
//! (with and without `ACL DRYRUN`), a target too small, a newer source (transcoded) and
//! an unreachable cluster node each fail their check, and only theirs.

use crate::cmd;
use crate::util::cluster::{shared_cluster, Cluster};
use crate::util::{rump, Flavor, Run, Server};

/// The line of check `name` (`ok    source: …`).
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l[6.min(l.len())..].starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name:?} check in\n{}", run.stdout))
}

fn assert_status(run: &Run, name: &str, status: &str) {
    let l = line(run, name);
    assert!(
        l.starts_with(status),
        "{name} should be {status}: {l}\n{}",
        run.stdout
    );
}

fn dry_run(from: &str, to: &str) -> Run {
    rump(&["-from", from, "-to", to, "--dry-run"])
}

/// A source with some data: 2,000 small strings and a few other types.
fn loaded() -> Server {
    let source = Server::start();
    let mut c = source.client();
    let sets: Vec<Vec<Vec<u8>>> = (0..2000)
        .map(|i| cmd!("SET", format!("k:{i}"), "some value"))
        .collect();
    c.pipeline(&sets);
    c.ok(&["HSET", "h", "f", "v"]);
    c.ok(&["SADD", "s", "a", "b"]);
    source
}

#[test]
fn a_good_pair_passes_and_nothing_is_written() {
    let source = loaded();
    let target = Server::start();
    for s in [&source, &target] {
        s.client().ok(&["CONFIG", "RESETSTAT"]);
    }
    let run = dry_run(&source.url(), &target.url());
    run.success();
    for check in [
        "source",
        "target",
        "source permissions",
        "target permissions",
        "versions",
        "keys",
        "target keys",
        "target memory",
        "estimate",
    ] {
        assert_status(&run, check, "ok ");
    }
    assert!(line(&run, "source").contains("redis 7.0.15 (standalone)"));
    assert!(line(&run, "target permissions").contains("may run RESTORE [ACL DRYRUN]"));
    assert!(line(&run, "keys").contains("2,002 keys"));
    assert!(line(&run, "estimate").contains("keys read in"));
    assert!(
        run.stdout.contains("dry run: nothing blocks the run"),
        "{}",
        run.stdout
    );
    assert_eq!(target.client().dbsize(), 0);
    for (s, what) in [(&source, "source"), (&target, "target")] {
        let used = s.client().commands_used();
        let writes: Vec<&String> = used
            .iter()
            .filter(|c| {
                !matches!(
                    c.as_str(),
                    "client|setname"
                        | "config|resetstat"
                        | "info"
                        | "dbsize"
                        | "pexpiretime"
                        | "pttl"
                        | "scan"
                        | "dump"
                        | "acl|dryrun"
                )
            })
            .collect();
        assert!(writes.is_empty(), "the {what} ran {writes:?}");
    }

    let json = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--dry-run",
        "--json",
    ]);
    json.success();
    assert!(json.stdout.starts_with("{\"dry_run\":true,\"ok\":9,\"warnings\":0,\"failures\":0,\"checks\":[{\"check\":\"source\",\"status\":\"ok\""), "{}", json.stdout);
}

#[test]
fn a_wrong_password_fails_its_end_only() {
    let source = loaded();
    let target = Server::start_with(Flavor::Redis, &["--requirepass", "right"]);
    let wrong = format!("redis://:wrong@127.0.0.1:{}", target.port);
    let run = dry_run(&source.url(), &wrong);
    run.expect_code(1);
    assert_status(&run, "source", "ok ");
    assert_status(&run, "target", "fail");
    assert!(
        line(&run, "target").contains("authentication failed: WRONGPASS"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("wrong@"),
        "the password is never printed"
    );
    assert!(
        run.stdout.contains("dry run: 1 checks failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_acl_permission_fails_and_names_the_command() {
    let source = loaded();
    let target = Server::start();
    // May run ACL DRYRUN (in @all) but not RESTORE.
    target.client().ok(&[
        "ACL", "SETUSER", "copier", "on", ">pw", "~*", "+@all", "-restore",
    ]);
    let copier = format!("redis://copier:pw@127.0.0.1:{}", target.port);
    let run = dry_run(&source.url(), &copier);
    run.expect_code(1);
    let l = line(&run, "target permissions");
    assert!(l.starts_with("fail"), "{l}");
    assert!(
        l.contains("may not run RESTORE") && l.contains("ACL SETUSER copier +restore"),
        "{l}"
    );
    assert!(l.contains("[ACL DRYRUN]"), "{l}");

    // Without ACL DRYRUN (no @admin), and no DUMP on the source: probed.
    source.client().ok(&[
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@all", "-@admin", "-dump",
    ]);
    let reader = format!("redis://reader:pw@127.0.0.1:{}", source.port);
    let run = dry_run(&reader, &target.url());
    run.expect_code(1);
    let l = line(&run, "source permissions");
    assert!(
        l.starts_with("fail") && l.contains("may not run DUMP"),
        "{l}"
    );
    assert!(l.contains("probed with SCAN, DUMP"), "{l}");
    assert_status(&run, "target permissions", "ok ");
    assert_eq!(target.client().dbsize(), 0);
}

#[test]
fn a_target_too_small_fails_the_memory_check() {
    let source = Server::start();
    let value = "x".repeat(10_000);
    let sets: Vec<Vec<Vec<u8>>> = (0..1000)
        .map(|i| cmd!("SET", format!("big:{i}"), value))
        .collect();
    source.client().pipeline(&sets);
    let target = Server::start_with(Flavor::Redis, &["--maxmemory", "4mb"]);
    let run = dry_run(&source.url(), &target.url());
    run.expect_code(1);
    let l = line(&run, "target memory");
    assert!(l.starts_with("fail") && l.contains("will not fit"), "{l}");
    assert_status(&run, "versions", "ok ");
}

#[test]
fn a_newer_source_than_the_target_says_values_will_be_transcoded() {
    let source = Server::start_with(Flavor::Valkey, &[]);
    source.client().ok(&["SET", "k", "v"]);
    let target = Server::start();
    let run = dry_run(&source.url(), &target.url());
    run.success();
    let l = line(&run, "versions");
    assert!(
        l.starts_with("ok") && l.contains("writes RDB 11") && l.contains("rewritten"),
        "{l}"
    );
}

#[test]
fn a_cluster_target_is_checked_node_by_node() {
    let source = loaded();
    let run = dry_run(&source.url(), &shared_cluster().seed_url());
    run.success();
    assert!(line(&run, "target cluster").contains("3 masters, 3 replicas; every slot of 16384"));
    assert_status(&run, "target nodes", "ok ");
    assert!(line(&run, "target nodes").contains("all 6 nodes answer"));
}

#[test]
fn an_unreachable_cluster_node_fails() {
    let mut cluster = Cluster::start(3, 0);
    let seed = cluster.masters[0].url();
    let gone = cluster.masters[2].port;
    cluster.masters[2].kill();
    let source = loaded();
    let run = dry_run(&source.url(), &seed);
    run.expect_code(1);
    let l = line(&run, "target nodes");
    assert!(
        l.starts_with("fail") && l.contains(&format!(":{gone} ")),
        "{l}\n{}",
        run.stdout
    );
    assert!(l.contains("does not answer"), "{l}");
}

#[test]
fn dump_files_are_read_whole_and_targets_checked_for_writing() {
    let source = loaded();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.rump");
    let file = file.to_str().unwrap();
    let run = dry_run(&source.url(), file);
    run.success();
    assert!(
        line(&run, "target").contains("can be written"),
        "{}",
        run.stdout
    );
    assert!(!std::path::Path::new(file).exists(), "nothing was written");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    rump(&["-from", &source.url(), "-to", file, "-silent"]).success();
    let target = Server::start();
    let run = dry_run(file, &target.url());
    run.success();
    assert!(
        line(&run, "source").contains("read whole and intact: 2,002 keys"),
        "{}",
        run.stdout
    );
    assert_status(&run, "versions", "ok ");

    let run = dry_run(&source.url(), "/nonexistent-dir/x.rump");
    run.expect_code(1);
    assert_status(&run, "target", "fail");
}

#[test]
fn the_same_database_at_both_ends_fails() {
    let server = loaded();
    let other_name = format!("redis://localhost:{}", server.port);
    let run = dry_run(&server.url(), &other_name);
    run.expect_code(1);
    let l = line(&run, "ends");
    assert!(
        l.starts_with("fail") && l.contains("the same database"),
        "{l}"
    );
}
