//! Across versions (issue 11): copies between Redis 6.2, Redis 7.0, Valkey
//! 8.1 and Valkey 9.1 in every direction that needs the source's payloads
//! rewritten for an older target, and the upward ones as controls. Every
//! core type in every encoding each server makes arrives equal in content,
//! with its expiry, and `transcoded` counts exactly the rewritten keys.
//!
//! One server per version serves the whole test process: its db 0 holds
//! the data set (loaded once, before any test uses the server), and every
//! test copies into a database of the target no other test touches.

/// Reading a database through commands, and comparing two of them.
mod content;
/// The data set: every type and encoding; hashes with field TTLs.
mod data;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use content::{assert_equal, read, show, Content, Ends};

use crate::util::{clean_up_after_exit, rump, Flavor, Run, Server};

/// One of the four servers.
#[derive(Clone, Copy, Debug)]
pub struct Version {
    pub name: &'static str,
    flavor: Flavor,
    /// The major version: 7.0 added `PEXPIRETIME` and the stream metadata.
    pub major: u32,
    /// The RDB version its `DUMP` writes.
    pub rdb: u16,
}

const REDIS_6_2: Version = Version {
    name: "Redis 6.2",
    flavor: Flavor::Redis62,
    major: 6,
    rdb: 9,
};
const REDIS_7_0: Version = Version {
    name: "Redis 7.0",
    flavor: Flavor::Redis,
    major: 7,
    rdb: 10,
};
const VALKEY_8_1: Version = Version {
    name: "Valkey 8.1",
    flavor: Flavor::Valkey,
    major: 8,
    rdb: 11,
};
const VALKEY_9_1: Version = Version {
    name: "Valkey 9.1",
    flavor: Flavor::Valkey91,
    major: 9,
    rdb: 80,
};

/// The db of the Valkey 9.1 server that holds hashes with field TTLs (and a
/// few keys without), apart from the data set every direction copies.
const FIELD_TTL_DB: u32 = 1;

/// The server of `version`, started and loaded on first use. A static is
/// never dropped: a watchdog kills it after this process exits.
fn server(version: Version) -> &'static Server {
    static SERVERS: [OnceLock<Server>; 4] = [const { OnceLock::new() }; 4];
    let slot = match version.flavor {
        Flavor::Redis62 => 0,
        Flavor::Redis => 1,
        Flavor::Valkey => 2,
        Flavor::Valkey91 => 3,
    };
    SERVERS[slot].get_or_init(|| {
        let server = Server::start_with(version.flavor, &[]);
        clean_up_after_exit(&[server.pid()], &[server.dir()]);
        let mut c = server.client();
        data::load(&mut c, version);
        if version.flavor == Flavor::Valkey91 {
            data::load_field_ttls(&mut c, FIELD_TTL_DB);
        }
        server
    })
}

/// A database no other test of this process copies into (db 0 holds the
/// data set, db 1 Valkey 9.1's field TTLs; a server has 16).
fn fresh_db() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(2);
    let db = NEXT.fetch_add(1, Ordering::SeqCst);
    assert!(
        db < 16,
        "more tests than databases: give the new one another server"
    );
    db
}

/// Copies db `from_db` of `from`'s server into a fresh db of `to`'s with
/// `extra` options; returns the run and the db.
fn copy(from: Version, from_db: u32, to: Version, extra: &[&str]) -> (Run, u32) {
    let db = fresh_db();
    let source = server(from).url_db(from_db);
    let target = server(to).url_db(db);
    let mut args = vec!["-from", &source, "-to", &target, "--json"];
    args.extend_from_slice(extra);
    (rump(&args), db)
}

/// Copies the data set from `from` to `to` and checks it arrived equal.
fn copies_every_type(from: Version, to: Version) {
    let (run, db) = copy(from, 0, to, &[]);
    run.success();
    let (ours, theirs) = std::thread::scope(|s| {
        let ours = s.spawn(|| read(server(from), 0, from));
        let theirs = read(server(to), db, to);
        (ours.join().expect("reading the source"), theirs)
    });
    assert!(
        ours.len() >= 39,
        "the data set is loaded: {} keys",
        ours.len()
    );
    assert_arrived(&run, &ours, &theirs, from, to);
}

/// Panics unless `theirs` (the target's) is `ours` (the source's) in
/// content and expiry, `run` says it copied exactly those keys, and
/// `transcoded` counts every one of them when the target is older and none
/// when it is not: each payload's footer carries the source's RDB version.
fn assert_arrived(run: &Run, ours: &Content, theirs: &Content, from: Version, to: Version) {
    run.assert_reconciles();
    let ends = Ends {
        source: from,
        target: to,
    };
    assert_equal(ours, theirs, &ends);
    let copied = run.json_field("copied");
    assert_eq!(copied, ours.len() as f64, "{}", run.stdout);
    let expected = if from.rdb > to.rdb { copied } else { 0.0 };
    assert_eq!(
        run.json_field("transcoded"),
        expected,
        "{} → {}: {}",
        from.name,
        to.name,
        run.stdout
    );
}

#[test]
fn valkey_9_1_to_redis_7_0() {
    copies_every_type(VALKEY_9_1, REDIS_7_0);
}

#[test]
fn valkey_9_1_to_valkey_8_1() {
    copies_every_type(VALKEY_9_1, VALKEY_8_1);
}

#[test]
fn valkey_9_1_to_redis_6_2() {
    copies_every_type(VALKEY_9_1, REDIS_6_2);
}

#[test]
fn valkey_8_1_to_redis_7_0() {
    copies_every_type(VALKEY_8_1, REDIS_7_0);
}

#[test]
fn valkey_8_1_to_redis_6_2() {
    copies_every_type(VALKEY_8_1, REDIS_6_2);
}

#[test]
fn redis_7_0_to_redis_6_2() {
    copies_every_type(REDIS_7_0, REDIS_6_2);
}

#[test]
fn redis_6_2_to_redis_7_0_as_it_is() {
    copies_every_type(REDIS_6_2, REDIS_7_0);
}

#[test]
fn redis_7_0_to_valkey_8_1_as_it_is() {
    copies_every_type(REDIS_7_0, VALKEY_8_1);
}

#[test]
fn valkey_8_1_to_valkey_9_1_as_it_is() {
    copies_every_type(VALKEY_8_1, VALKEY_9_1);
}

/// The field-TTL db of Valkey 9.1 and the target's db, read.
fn field_ttl_ends(db: u32) -> (Content, Content) {
    (
        read(server(VALKEY_9_1), FIELD_TTL_DB, VALKEY_9_1),
        read(server(REDIS_7_0), db, REDIS_7_0),
    )
}

/// The names of the hashes with field TTLs in [`FIELD_TTL_DB`].
const FIELD_TTL_HASHES: [&str; 5] = [
    "fttl:all",
    "fttl:all-expired",
    "fttl:expired",
    "fttl:large",
    "fttl:small",
];

#[test]
fn hashes_with_field_ttls_fail_by_name_on_redis_7_0_and_the_rest_is_copied() {
    let (run, db) = copy(VALKEY_9_1, FIELD_TTL_DB, REDIS_7_0, &[]);
    run.expect_code(1);
    run.assert_reconciles();
    assert_eq!(
        run.json_field("failed"),
        FIELD_TTL_HASHES.len() as f64,
        "{}",
        run.stdout
    );
    for key in FIELD_TTL_HASHES {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("\"{key}\"")))
            .unwrap_or_else(|| panic!("{key} is not named:\n{}", run.stderr));
        assert_eq!(
            line.matches("--drop-field-ttl").count(),
            1,
            "said once: {line}"
        );
    }
    let (mut ours, theirs) = field_ttl_ends(db);
    ours.retain(|k, _| !FIELD_TTL_HASHES.contains(&show(k).as_str()));
    assert!(ours.len() >= 3, "keys without field TTLs: {}", ours.len());
    assert_arrived(&run, &ours, &theirs, VALKEY_9_1, REDIS_7_0);
}

#[test]
fn drop_field_ttl_copies_those_hashes_without_their_field_ttls() {
    let (run, db) = copy(VALKEY_9_1, FIELD_TTL_DB, REDIS_7_0, &["--drop-field-ttl"]);
    run.success();
    let (ours, theirs) = field_ttl_ends(db);
    // Every field still alive and its value, and the key's own expiry; the
    // field TTLs are what Redis 7.0 has no place for. A field that expired
    // but was still held stays gone (the source shows "kept" alone), and
    // the hash whose every field expired is counted as vanished.
    assert!(
        !ours.contains_key(&b"fttl:all-expired"[..]),
        "gone on the source"
    );
    for key in FIELD_TTL_HASHES
        .iter()
        .filter(|k| **k != "fttl:all-expired")
    {
        assert!(ours.contains_key(key.as_bytes()), "{key} on the source");
    }
    assert_arrived(&run, &ours, &theirs, VALKEY_9_1, REDIS_7_0);
    assert_eq!(run.json_field("vanished"), 1.0, "{}", run.stdout);
    let mut c = server(VALKEY_9_1).client();
    c.ok(&["SELECT", &FIELD_TTL_DB.to_string()]);
    let field_expiry = c.ok(&["HPEXPIRETIME", "fttl:small", "FIELDS", "1", "a"]);
    assert_eq!(
        field_expiry,
        resp::Frame::Array(vec![resp::Frame::Integer(data::expiry_ms())]),
        "the source's field does expire"
    );
}

#[test]
fn a_valkey_9_1_dump_file_restores_into_redis_7_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("valkey-9.1.rump");
    let file = file.to_str().expect("a UTF-8 temp path");
    let source = server(VALKEY_9_1).url();
    rump(&["-from", &source, "-to", file]).success();
    let db = fresh_db();
    let target = server(REDIS_7_0).url_db(db);
    let run = rump(&["-from", file, "-to", &target, "--json"]);
    run.success();
    let ours = read(server(VALKEY_9_1), 0, VALKEY_9_1);
    let theirs = read(server(REDIS_7_0), db, REDIS_7_0);
    assert_arrived(&run, &ours, &theirs, VALKEY_9_1, REDIS_7_0);
}
