//! `--verify` and `--verify-only` against real servers: a clean copy
//! verifies; deliberate changes on the target are each counted and named,
//! and nothing is written on either end; equal contents with different DUMP
//! bytes (hashtable encodings, another server version) are equal; cluster
//! ends and dump-file sources are compared too.

use crate::cmd;
use crate::util::cluster::shared_cluster;
use crate::util::{rump, Client, Flavor, Run, Server};

/// Commands that read, or set up a connection: everything a verify may
/// send (`config|resetstat` is the test's own).
const READ_COMMANDS: &[&str] = &[
    "auth",
    "client|setname",
    "config|resetstat",
    "info",
    "select",
    "dbsize",
    "scan",
    "dump",
    "pexpiretime",
    "pttl",
    "type",
    "get",
    "lrange",
    "sscan",
    "hscan",
    "zrange",
    "xrange",
    "xinfo|stream",
    "xinfo|groups",
    "xinfo|consumers",
    "xpending",
    "cluster|shards",
    "cluster|slots",
    "readonly",
    "asking",
];

/// Panics unless every command `server` ran since its stats were reset is
/// one that reads.
fn assert_only_reads(server: &Server, what: &str) {
    let used = server.client().commands_used();
    let writes: Vec<&String> = used
        .iter()
        .filter(|c| !READ_COMMANDS.contains(&c.as_str()))
        .collect();
    assert!(
        writes.is_empty(),
        "the {what} ran {writes:?} (all: {used:?})"
    );
}

/// `n` keys under `prefix` of every core type, a third with a TTL.
fn mixed(prefix: &str, n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut commands = Vec::new();
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let v = i.to_string();
        commands.push(match i % 6 {
            0 => cmd!("SET", key, format!("value-{i}")),
            1 => cmd!("RPUSH", key, "a", "b", v),
            2 => cmd!("SADD", key, "x", "y", v),
            3 => cmd!("ZADD", key, "1.5", "one", v, "n"),
            4 => cmd!("HSET", key, "f", v, "g", "x"),
            _ => cmd!("XADD", key, "1-1", "f", v),
        });
        if i % 3 == 0 {
            commands.push(cmd!("PEXPIRE", key, (600_000 + i).to_string()));
        }
    }
    commands
}

fn verify_only(from: &str, to: &str, extra: &[&str]) -> Run {
    let mut args = vec!["-from", from, "-to", to, "--verify-only", "--json"];
    args.extend_from_slice(extra);
    rump(&args)
}

fn count(run: &Run, field: &str) -> u64 {
    run.json_field(field) as u64
}

#[test]
fn a_clean_copy_verifies() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    let keys = crate::migrate::load_every_type(&mut src);
    src.pipeline(&mixed("m:", 600));
    let total = src.dbsize() as u64;
    assert_eq!(total, keys.len() as u64 + 600);

    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--verify",
        "--json",
    ]);
    run.success();
    assert_eq!(count(&run, "copied"), total);
    assert_eq!(count(&run, "verified"), total, "{}", run.stdout);
    for field in ["missing", "different", "ttl_mismatch", "verify_rechecked"] {
        assert_eq!(count(&run, field), 0, "{field}: {}", run.stdout);
    }
    assert!(run.stderr.contains("rump: scanned"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("verify: {total} keys compared: verified {total},")),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_only_names_every_difference_and_writes_nothing() {
    let source = Server::start();
    let target = Server::start();
    source.client().pipeline(&mixed("k:", 300));
    rump(&["-from", &source.url(), "-to", &target.url(), "-silent"]).success();

    let mut dst = target.client();
    // Deleted on the target.
    dst.ok(&["DEL", "k:1", "k:2", "k:7"]);
    // Another value, in a string, a hash field and a list.
    dst.ok(&["SET", "k:0", "changed"]);
    dst.ok(&["HSET", "k:4", "f", "other"]);
    dst.ok(&["RPUSH", "k:13", "extra"]);
    // Another type under the same name.
    dst.ok(&["DEL", "k:8"]);
    dst.ok(&["SET", "k:8", "not a set any more"]);
    // TTLs moved: one dropped, one set, one changed by a minute.
    dst.ok(&["PERSIST", "k:3"]);
    dst.ok(&["PEXPIRE", "k:5", "900000"]);
    dst.ok(&["PEXPIRE", "k:6", "660000"]);
    // Only on the target: not the verify's business.
    dst.ok(&["SET", "only-on-target", "x"]);
    for s in [&source, &target] {
        s.client().ok(&["CONFIG", "RESETSTAT"]);
    }

    let run = verify_only(&source.url(), &target.url(), &[]);
    run.expect_code(1);
    assert_eq!(count(&run, "missing"), 3, "{}", run.stdout);
    assert_eq!(count(&run, "different"), 4, "{}", run.stdout);
    assert_eq!(count(&run, "ttl_mismatch"), 3, "{}", run.stdout);
    assert_eq!(count(&run, "verified"), 300 - 10, "{}", run.stdout);
    assert_eq!(count(&run, "verify_rechecked"), 10, "{}", run.stdout);
    assert_eq!(count(&run, "copied"), 0);
    for key in ["k:1", "k:2", "k:7"] {
        assert!(
            run.stderr.contains(&format!("verify: missing \"{key}\"")),
            "{}",
            run.stderr
        );
    }
    for (key, why) in [
        ("k:0", "string values differ"),
        ("k:4", "hash field \\\"f\\\" differs"),
        ("k:13", "lists differ in length"),
        ("k:8", "type set on the source, string on the target"),
    ] {
        let line = format!("verify: different \"{key}\": ");
        let found = run.stderr.lines().find(|l| l.contains(&line));
        assert!(
            found.is_some_and(|l| l.contains(why.replace("\\\"", "\"").as_str())),
            "{key}: {why}\n{}",
            run.stderr
        );
    }
    for key in ["k:3", "k:5", "k:6"] {
        let line = format!("verify: ttl_mismatch \"{key}\": expiry ");
        assert!(run.stderr.contains(&line), "{}", run.stderr);
    }
    assert!(
        run.stdout
            .contains("{\"kind\":\"missing\",\"key\":\"k:1\",\"why\":\"\"}"),
        "{}",
        run.stdout
    );
    assert_only_reads(&source, "source");
    assert_only_reads(&target, "target");
    assert_eq!(dst.dbsize(), 300 - 3 + 1, "nothing was written");
}

#[test]
fn verify_only_follows_the_selection_options() {
    let source = Server::start();
    let target = Server::start();
    source.client().pipeline(&mixed("sel:", 120));
    source.client().pipeline(&mixed("other:", 60));
    // Nothing copied: every selected key is missing.
    let run = verify_only(
        &source.url(),
        &target.url(),
        &["--match", "sel:*", "--type", "hash"],
    );
    run.expect_code(1);
    assert_eq!(count(&run, "missing"), 20, "{}", run.stdout);
    assert_eq!(count(&run, "verified"), 0);
    let run = verify_only(
        &source.url(),
        &target.url(),
        &["--slots", "0-8191", "--match", "sel:*"],
    );
    let low = (0..120)
        .filter(|i| rump::cluster::slot(format!("sel:{i}").as_bytes()) <= 8191)
        .count() as u64;
    assert_eq!(count(&run, "missing"), low, "{}", run.stdout);
}

/// Hashtable-encoded sets, hashes and sorted sets built in other insertion
/// orders on the two servers: their DUMP bytes differ, their contents do
/// not.
#[test]
fn hashtable_encodings_with_other_bytes_compare_equal() {
    let source = Server::start();
    let target = Server::start_with(
        Flavor::Redis,
        &[
            "--hash-max-listpack-entries",
            "0",
            "--zset-max-listpack-entries",
            "0",
        ],
    );
    let members: Vec<String> = (0..300).map(|i| format!("member-{i}")).collect();
    let load = |c: &mut Client, order: &mut dyn Iterator<Item = &String>| {
        let order: Vec<&String> = order.collect();
        let mut set = cmd!("SADD", "set");
        let mut hash = cmd!("HSET", "hash");
        let mut zset = cmd!("ZADD", "zset");
        let mut small = cmd!("HSET", "small-hash");
        for (n, m) in order.iter().enumerate() {
            set.push(m.as_bytes().to_vec());
            hash.extend([m.as_bytes().to_vec(), b"v".to_vec()]);
            zset.extend([format!("{}", n % 7).into_bytes(), m.as_bytes().to_vec()]);
            if n < 5 {
                small.extend([m.as_bytes().to_vec(), b"v".to_vec()]);
            }
        }
        c.pipeline(&[set, hash, zset, small]);
    };
    let mut src = source.client();
    let mut dst = target.client();
    load(&mut src, &mut members.iter());
    // Same contents, the other way round (zset scores go with the member).
    let reversed: Vec<String> = members.iter().rev().cloned().collect();
    let mut dst_zset = cmd!("ZADD", "zset");
    for (n, m) in members.iter().enumerate() {
        dst_zset.extend([format!("{}", n % 7).into_bytes(), m.as_bytes().to_vec()]);
    }
    load(&mut dst, &mut reversed.iter());
    dst.ok(&["DEL", "zset"]);
    dst.pipeline(&[dst_zset]);
    dst.ok(&["DEL", "small-hash"]);
    let mut small = cmd!("HSET", "small-hash");
    for m in members.iter().take(5).rev() {
        small.extend([m.as_bytes().to_vec(), b"v".to_vec()]);
    }
    dst.pipeline(&[small]);
    // A skiplist is serialised in score order, so the zset's bytes agree.
    for key in ["set", "hash", "small-hash"] {
        let differ = src.dump(key.as_bytes()) != dst.dump(key.as_bytes());
        assert!(differ, "{key}: the DUMP bytes should differ");
    }

    let run = verify_only(&source.url(), &target.url(), &[]);
    run.success();
    assert_eq!(count(&run, "verified"), 4, "{}", run.stdout);

    // A member less is found, though.
    dst.ok(&["SREM", "set", "member-17"]);
    let run = verify_only(&source.url(), &target.url(), &[]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("verify: different \"set\": set members differ: 1 only on the source"),
        "{}",
        run.stderr
    );
}

/// Valkey 8.1 (RDB 11) against Redis 7.0 (RDB 10), the same data written to
/// both by the test: footers differ everywhere, a small set's encoding
/// differs, a stream's layout too; the contents are equal.
#[test]
fn a_newer_source_against_an_older_target_compares_contents() {
    let source = Server::start_with(Flavor::Valkey, &[]);
    let target = Server::start();
    let data = vec![
        cmd!("SET", "s", "hello"),
        cmd!("RPUSH", "l", "a", "b", "c"),
        cmd!("SADD", "set", "x", "y", "z"),
        cmd!("SADD", "ints", "1", "2", "3"),
        cmd!("HSET", "h", "f", "v"),
        cmd!("ZADD", "z", "0.1", "a", "2", "b"),
        cmd!("XADD", "x", "1-1", "f", "v"),
        cmd!("XADD", "x", "2-1", "f", "w"),
        cmd!("XGROUP", "CREATE", "x", "g", "0"),
        cmd!("PEXPIRE", "s", "600000"),
    ];
    let (mut src, mut dst) = (source.client(), target.client());
    src.pipeline(&data);
    dst.pipeline(&data);
    // One pending entry on each, as a consumer reads it.
    for c in [&mut src, &mut dst] {
        c.ok(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "x",
            ">",
        ]);
    }
    // Same expiry, to the millisecond.
    let at = src.pexpiretime(b"s").to_string();
    dst.ok(&["PEXPIREAT", "s", &at]);
    assert_ne!(src.dump(b"set"), dst.dump(b"set"));
    assert_ne!(src.dump(b"x"), dst.dump(b"x"));

    let run = verify_only(&source.url(), &target.url(), &[]);
    run.success();
    assert_eq!(count(&run, "verified"), 7, "{}\n{}", run.stdout, run.stderr);

    // The target's consumer reads another entry: the groups differ.
    dst.ok(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "1",
        "STREAMS",
        "x",
        ">",
    ]);
    let run = verify_only(&source.url(), &target.url(), &[]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("verify: different \"x\": consumer group \"g\""),
        "{}",
        run.stderr
    );
}

#[test]
fn a_cluster_at_either_end_is_verified() {
    let cluster = shared_cluster();
    cluster.pipeline(&mixed("vc:", 300));
    let target = Server::start();
    // Cluster → standalone: copy and verify, every master scanned.
    let run = rump(&[
        "-from",
        &cluster.seed_url(),
        "-to",
        &target.url(),
        "--match",
        "vc:*",
        "--verify",
        "--json",
    ]);
    run.success();
    assert_eq!(count(&run, "verified"), 300, "{}", run.stdout);

    // Standalone → cluster: each key read on the master owning its slot.
    target.client().ok(&["SET", "vc:1", "changed"]);
    let run = verify_only(&target.url(), &cluster.seed_url(), &["--match", "vc:*"]);
    run.expect_code(1);
    assert_eq!(count(&run, "different"), 1, "{}", run.stdout);
    assert_eq!(count(&run, "verified"), 299, "{}", run.stdout);
    assert!(
        run.stderr.contains("verify: different \"vc:1\""),
        "{}",
        run.stderr
    );
}

#[test]
fn a_dump_file_is_verified_against_a_server() {
    let source = Server::start();
    let target = Server::start();
    // Sets of small integers (intsets), whose payloads a restore rebuilds
    // byte for byte; a hashtable set's order is each server's own.
    let data: Vec<Vec<Vec<u8>>> = mixed("f:", 200)
        .into_iter()
        .map(|c| match &c[0][..] {
            b"SADD" => cmd!("SADD", c[1], "1", "2", "3"),
            _ => c,
        })
        .collect();
    source.client().pipeline(&data);
    source
        .client()
        .ok(&["SADD", "hashtable-set", "a", "b", "c", "d"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.rump");
    let file = file.to_str().unwrap();
    rump(&["-from", &source.url(), "-to", file, "-silent"]).success();
    rump(&["-from", file, "-to", &target.url(), "-silent"]).success();

    // The hashtable set's payload differs from the file's, but its decoded
    // members are the same: equal.
    let run = verify_only(file, &target.url(), &[]);
    run.success();
    assert_eq!(count(&run, "verified"), 201, "{}", run.stdout);
    assert_eq!(count(&run, "different"), 0, "{}", run.stdout);
    // A member changed: found by content, without reading the file again.
    target.client().ok(&["SREM", "hashtable-set", "d"]);
    target.client().ok(&["SADD", "hashtable-set", "e"]);
    let run = verify_only(file, &target.url(), &[]);
    run.expect_code(1);
    assert_eq!(count(&run, "different"), 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("verify: different \"hashtable-set\""),
        "{}",
        run.stderr
    );
    target.client().ok(&["SREM", "hashtable-set", "e"]);
    target.client().ok(&["SADD", "hashtable-set", "d"]);
    target.client().ok(&["DEL", "f:10"]);
    target.client().ok(&["SET", "f:12", "other"]);
    let run = verify_only(file, &target.url(), &[]);
    run.expect_code(1);
    assert_eq!(count(&run, "missing"), 1, "{}", run.stdout);
    assert_eq!(count(&run, "different"), 1, "{}", run.stdout);
    assert_eq!(count(&run, "verify_rechecked"), 0, "a file does not change");
    assert!(
        run.stderr.contains("verify: missing \"f:10\""),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_needs_a_server_target_and_a_source_read_twice() {
    let source = Server::start();
    let run = rump(&["-from", &source.url(), "-to", "x.rump", "--verify-only"]);
    run.expect_code(2);
    assert!(run.stderr.contains("dump file"), "{}", run.stderr);
    let run = rump(&["-from", "-", "-to", &source.url(), "--verify"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--verify-only"), "{}", run.stderr);
}

/// A key that differs when first compared and is equal by the time it is
/// read again (here: the target's keys come back while the verify runs) is
/// not reported.
#[test]
fn a_difference_gone_by_the_re_check_is_not_reported() {
    let source = Server::start();
    let target = Server::start();
    let sets: Vec<Vec<Vec<u8>>> = (0..400)
        .map(|i| cmd!("SET", format!("r:{i}"), "v"))
        .collect();
    source.client().pipeline(&sets);
    // --rate 200: the scan takes about 2 s, and the target is empty for
    // the first half second of it.
    let mut running = crate::util::Running::start(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--verify-only",
        "--json",
        "--rate",
        "200",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    target.client().pipeline(&sets);
    let run = running.wait(std::time::Duration::from_secs(30));
    run.success();
    assert_eq!(count(&run, "verified"), 400, "{}", run.stdout);
    assert!(count(&run, "verify_rechecked") > 0, "{}", run.stdout);
    assert_eq!(count(&run, "missing"), 0, "{}", run.stdout);
}
