//! Dump files end to end: server → file → server round trips in both formats,
//! stdin/stdout pipes, atomic replacement of an existing dump, detection of
//! every truncation and bit flip, and the original tool's format built by hand.
//!
//! Format details (byte layout, what is checked where) are unit-tested in
//! `src/dump/`; these tests prove what a user sees: exit codes, messages,
//! files on disk and keys on the target.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::migrate::{assert_same_values, load_every_type};
use crate::util::{rump, rump_bin, rump_spawn, signal, wait_run, Client, Flavor, Run, Server};

/// The legacy separator "✝✝" (U+271D twice), spelled as bytes so the fixture
/// does not depend on our own constant.
const SEP: &[u8] = &[0xe2, 0x9c, 0x9d, 0xe2, 0x9c, 0x9d];

/// The native magic number (FORMAT.md).
pub const MAGIC: &[u8] = b"\x89RUMP\r\n\x1a";

pub fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Every file name in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Temporary files a dump writer left behind (`.NAME.rump-tmp-*`).
pub fn leftovers(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.contains(".rump-tmp-"))
        .collect()
}

/// Keys with expiry times, binary names included, plus one persistent key.
/// `separator` adds a key whose name holds "✝✝" (native only).
fn load_ttls(c: &mut Client, separator: bool) {
    let mut cmds = vec![
        cmd!("SET", "ttl:string", "v", "PX", "500000"),
        cmd!("HSET", "ttl:hash", "f", "v"),
        cmd!("PEXPIRE", "ttl:hash", "400000"),
        cmd!(
            "SET",
            b"ttl:\r\n\0bin".to_vec(),
            b"\0\r\n".to_vec(),
            "PX",
            "300000"
        ),
        cmd!("SET", "persistent", "forever"),
    ];
    if separator {
        cmds.push(cmd!("SET", "ttl:sep✝✝", "✝✝", "EX", "200000"));
    }
    c.pipeline(&cmds);
}

/// Restores `file` into `target` and checks it holds exactly `keys`, with
/// the source's values. Returns a client on the target.
pub fn restore_and_compare(
    file: &str,
    target: &Server,
    src: &mut Client,
    keys: &[Vec<u8>],
) -> Client {
    let run = rump(&["-from", file, "-to", &target.url(), "--json"]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("copied") as usize, keys.len());
    let mut dst = target.client();
    assert_eq!(dst.keys(), keys);
    assert_same_values(src, &mut dst, keys);
    dst
}

/// Absolute expiry equal to the millisecond on both ends; -1 stays -1.
fn assert_same_expiry(src: &mut Client, dst: &mut Client, keys: &[Vec<u8>]) {
    for key in keys {
        let name = String::from_utf8_lossy(key);
        assert_eq!(dst.pexpiretime(key), src.pexpiretime(key), "{name:?}");
    }
    assert_eq!(dst.pexpiretime(b"persistent"), -1);
}

/// Every type, binary keys and values, and keys with expiry times.
fn load_all(c: &mut Client) -> Vec<Vec<u8>> {
    load_every_type(c);
    load_ttls(c, true);
    c.keys()
}

/// Asserts that `key`'s expiry on the target is within `slack` ms of the
/// source's, never later (TTLs relative to restore time can only shrink).
fn assert_ttl_close(src: &mut Client, dst: &mut Client, key: &[u8], slack: i64) {
    let (a, b) = (src.pexpiretime(key), dst.pexpiretime(key));
    let name = String::from_utf8_lossy(key);
    if a < 0 {
        assert_eq!(b, a, "{name:?}: persistence differs");
    } else {
        assert!(
            b > 0 && (b - a).abs() <= slack,
            "{name:?}: expiry {a} on the source, {b} on the target"
        );
    }
}

/// Separators in a legacy file, counted as its reader cuts them: leftmost
/// first, never overlapping (the empty key makes "✝✝✝✝").
fn count_separators(bytes: &[u8]) -> usize {
    let (mut n, mut at) = (0, 0);
    while let Some(i) = bytes[at..].windows(SEP.len()).position(|w| w == SEP) {
        n += 1;
        at += i + SEP.len();
    }
    n
}

/// The one line a damaged dump must produce: names the file and an offset.
fn assert_damage_reported(run: &Run, file: &str) {
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}: {}", run.command, run.stderr);
    let prefix = format!("rump: dump file {file:?}: ");
    assert!(lines[0].starts_with(&prefix), "{}", run.stderr);
    assert!(lines[0].contains("byte offset "), "{}", run.stderr);
}

#[test]
fn native_round_trip_keeps_every_type_binary_data_and_exact_expiry() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    let keys = load_all(&mut src);
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("backup.rump"));

    let run = rump(&["-from", &source.url(), "-to", &file, "--json"]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("copied") as usize, keys.len());
    assert!(fs::read(&file).unwrap().starts_with(MAGIC));

    let mut dst = restore_and_compare(&file, &target, &mut src, &keys);
    assert_same_expiry(&mut src, &mut dst, &keys);
}

#[test]
fn legacy_round_trip_keeps_values_and_relative_ttls() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    load_every_type(&mut src);
    // The one key the original format cannot hold (see the refusal test).
    src.ok(&["DEL", "sep✝✝key"]);
    load_ttls(&mut src, false);
    let keys = src.keys();
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("old-style.rump"));

    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &file,
        "--format",
        "legacy",
        "--json",
    ]);
    run.success();
    assert_eq!(run.json_field("copied") as usize, keys.len());
    let bytes = fs::read(&file).unwrap();
    assert!(!bytes.starts_with(MAGIC));
    assert_eq!(
        count_separators(&bytes),
        3 * keys.len(),
        "three separators per record"
    );

    let mut dst = restore_and_compare(&file, &target, &mut src, &keys);
    for key in &keys {
        // Relative milliseconds: the expiry moves by the time between the
        // dump and the restore (well under 5 s here), persistence is kept.
        assert_ttl_close(&mut src, &mut dst, key, 5000);
    }
    assert_eq!(dst.pexpiretime(b"persistent"), -1);
}

#[test]
fn legacy_refuses_a_key_with_the_separator_and_writes_nothing() {
    let source = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "plain", "v"]);
    src.ok(&["SET", "a✝✝b", "v"]);
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("legacy.rump"));

    let run = rump(&["-from", &source.url(), "-to", &file, "--format", "legacy"]);
    run.expect_code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("cannot write key"))
        .unwrap_or_else(|| panic!("no refusal in {:?}", run.stderr));
    assert!(
        line.starts_with(&format!("rump: dump file {file:?}: ")),
        "{line}"
    );
    assert!(line.contains("a\\xe2\\x9c\\x9d\\xe2\\x9c\\x9db"), "{line}");
    assert!(line.contains("separator"), "{line}");
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

    // A payload holding the separator is refused the same way, and an
    // existing dump is left exactly as it was.
    src.ok(&["DEL", "a✝✝b"]);
    fs::write(&file, b"last night").unwrap();
    src.ok(&["SET", "value", "x✝✝y"]);
    let run = rump(&["-from", &source.url(), "-to", &file, "--format", "legacy"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("its payload contains"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read(&file).unwrap(), b"last night");
    assert_eq!(names(dir.path()), ["legacy.rump"]);
}

#[test]
fn stdout_piped_into_stdin_copies_everything() {
    let source = Server::start();
    let mut src = source.client();
    let keys = load_all(&mut src);
    let target = Server::start();

    let mut dumper = Command::new(rump_bin())
        .args(["-from", &source.url(), "-to", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the dumping rump");
    let pipe = dumper.stdout.take().expect("piped stdout");
    let restorer = Command::new(rump_bin())
        .args(["-from", "-", "-to", &target.url(), "--json"])
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the restoring rump");
    let restored = wait_run(restorer, "rump -from - (restore)", Duration::from_secs(30));
    let dumped = wait_run(dumper, "rump -to - (dump)", Duration::from_secs(30));
    dumped.success();
    restored.success();
    restored.assert_reconciles();
    assert_eq!(restored.json_field("copied") as usize, keys.len());

    let mut dst = target.client();
    assert_eq!(dst.keys(), keys);
    assert_same_values(&mut src, &mut dst, &keys);
    assert_same_expiry(&mut src, &mut dst, &keys);
}

#[test]
fn dump_file_is_private_and_replaces_the_previous_dump_whole() {
    use std::os::unix::fs::PermissionsExt;
    let source = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "generation", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.rump");
    let file = text(&path);
    rump(&["-from", &source.url(), "-to", &file]).success();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first = fs::read(&path).unwrap();

    // Tonight's dump replaces last night's, whatever the old file held.
    src.ok(&["DEBUG", "POPULATE", "2000"]);
    src.ok(&["SET", "generation", "2"]);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let run = rump(&["-from", &source.url(), "-to", &file, "--json"]);
    run.success();
    assert_eq!(run.json_field("copied"), 2001.0);
    let second = fs::read(&path).unwrap();
    assert_ne!(first, second);
    assert!(second.len() > first.len());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(names(dir.path()), ["backup.rump"]);

    let target = Server::start();
    rump(&["-from", &file, "-to", &target.url()]).success();
    let mut dst = target.client();
    assert_eq!(dst.dbsize(), 2001);
    assert_eq!(dst.ok(&["GET", "generation"]).as_bulk().unwrap(), "2");
}

/// Writes a first dump to `file`, then starts a slow (`--rate`) second one
/// and waits until its temporary file exists. Returns the first dump's bytes.
fn start_slow_dump(source: &Server, dir: &Path, file: &str) -> (Vec<u8>, std::process::Child) {
    source.client().ok(&["DEBUG", "POPULATE", "3000"]);
    rump(&["-from", &source.url(), "-to", file]).success();
    let previous = fs::read(file).unwrap();
    let child = rump_spawn(&[
        "-from",
        &source.url(),
        "-to",
        file,
        "--rate",
        "500",
        "--json",
        "--timeout",
        "1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while leftovers(dir).is_empty() {
        assert!(Instant::now() < deadline, "no temporary file appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let some keys reach the temporary file.
    std::thread::sleep(Duration::from_millis(300));
    (previous, child)
}

#[test]
fn a_failed_dump_leaves_the_previous_file_untouched() {
    let mut source = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("backup.rump"));
    let (previous, child) = start_slow_dump(&source, dir.path(), &file);
    source.kill();
    let run = wait_run(
        child,
        "rump -to backup.rump (source killed)",
        Duration::from_secs(20),
    );
    run.expect_code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains("source"), "{}", run.stderr);
    assert!(run.json_field("copied") < 3000.0);
    assert_eq!(fs::read(&file).unwrap(), previous, "previous dump changed");
    assert_eq!(names(dir.path()), ["backup.rump"]);
}

#[test]
fn an_interrupted_dump_leaves_the_previous_file_untouched() {
    let source = Server::start();
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let file = text(&dir.path().join("backup.rump"));
        source.client().ok(&["FLUSHALL"]);
        let (previous, child) = start_slow_dump(&source, dir.path(), &file);
        signal(child.id(), sig);
        let run = wait_run(child, &format!("rump (SIG{sig})"), Duration::from_secs(20));
        run.expect_code(code);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(
            run.stdout.contains("\"interrupted\":true"),
            "{}",
            run.stdout
        );
        assert_eq!(
            fs::read(&file).unwrap(),
            previous,
            "SIG{sig}: previous dump changed"
        );
        assert_eq!(names(dir.path()), ["backup.rump"], "SIG{sig}");
    }
}

/// Restores each damaged copy of a dump (a few at a time, each worker on its
/// own target db) and checks the failure: exit 1, one line naming the file and
/// an offset, and exactly `copied` keys on the target. Returns each `copied`.
fn restore_damaged(target: &Server, cases: &[(String, Vec<u8>)]) -> Vec<u64> {
    const WORKERS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let mut copied = vec![0u64; cases.len()];
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let dir = dir.path();
                s.spawn(move || {
                    let mut db = target.client();
                    db.ok(&["SELECT", &w.to_string()]);
                    let path = dir.join(format!("damaged-{w}.rump"));
                    let file = text(&path);
                    let url = target.url_db(w as u32);
                    let mut out = Vec::new();
                    for (i, (what, bytes)) in cases.iter().enumerate().skip(w).step_by(WORKERS) {
                        db.ok(&["FLUSHDB"]);
                        fs::write(&path, bytes).unwrap();
                        let run = rump(&["-from", &file, "-to", &url, "-silent", "--json"]);
                        assert_eq!(run.status, Some(1), "{what}: {}", run.stderr);
                        assert_damage_reported(&run, &file);
                        let n = run.json_field("copied");
                        assert_eq!(
                            db.dbsize() as f64,
                            n,
                            "{what}: keys on the target differ from `copied` ({})",
                            run.stderr
                        );
                        out.push((i, n as u64));
                    }
                    out
                })
            })
            .collect();
        for w in workers {
            for (i, n) in w.join().expect("worker panicked") {
                copied[i] = n;
            }
        }
    });
    copied
}

/// A native dump of 3000 incompressible 700-byte values: three blocks.
fn multi_block_dump(source: &Server) -> Vec<u8> {
    crate::util::load_incompressible(&mut source.client(), 3000, 700);
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("good.rump"));
    rump(&["-from", &source.url(), "-to", &file]).success();
    fs::read(&file).unwrap()
}

#[test]
fn truncation_anywhere_is_detected_and_counted() {
    let source = Server::start();
    let target = Server::start();
    let good = multi_block_dump(&source);
    let len = good.len();
    assert!(len > 2 << 20, "{len} bytes: expected several blocks");

    // 0 bytes is a valid empty dump (its own test); every other cut is damage.
    let mut cuts: Vec<usize> = (1..=16).collect();
    cuts.extend((1..=40).map(|i| i * len / 41));
    cuts.extend(len - 16..len);
    let cases: Vec<(String, Vec<u8>)> = cuts
        .iter()
        .map(|&n| (format!("cut at {n} of {len}"), good[..n].to_vec()))
        .collect();
    let copied = restore_damaged(&target, &cases);
    // Whole blocks before the cut are restored; nothing after it.
    assert!(copied.iter().all(|&n| n <= 3000));
    assert!(copied.iter().any(|&n| n > 0 && n < 3000), "{copied:?}");
    for (i, &n) in cuts.iter().enumerate() {
        if n < len / 4 {
            assert_eq!(
                copied[i], 0,
                "cut at {n}: a damaged first block restores nothing"
            );
        }
    }

    // The undamaged file restores completely.
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("good.rump"));
    fs::write(&file, &good).unwrap();
    let run = rump(&["-from", &file, "-to", &target.url_db(9), "--json"]);
    run.success();
    assert_eq!(run.json_field("copied"), 3000.0);
}

#[test]
fn bit_flips_are_detected_and_nothing_damaged_is_restored() {
    let source = Server::start();
    let target = Server::start();
    let good = multi_block_dump(&source);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let cases: Vec<(String, Vec<u8>)> = (0..40)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x >> 8) as usize % good.len();
            let bit = (x & 7) as u8;
            let mut bytes = good.clone();
            bytes[at] ^= 1 << bit;
            (format!("bit {bit} of byte {at} flipped"), bytes)
        })
        .collect();
    let copied = restore_damaged(&target, &cases);
    assert!(copied.iter().all(|&n| n < 3000), "{copied:?}");
}

#[test]
fn zero_byte_file_restores_as_an_empty_dump() {
    let target = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("empty.rump"));
    fs::write(&file, b"").unwrap();
    let run = rump(&["-from", &file, "-to", &target.url(), "--json"]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("scanned"), 0.0);
    assert_eq!(run.json_field("copied"), 0.0);
    assert_eq!(target.client().dbsize(), 0);
}

#[test]
fn legacy_file_built_by_hand_restores_values_and_ttls() {
    // Payloads come from a real server's DUMP; the file around them is built
    // here byte by byte, as the Go tool writes it, not by our writer.
    let scratch = Server::start();
    let mut s = scratch.client();
    s.pipeline(&[
        cmd!("SET", "user:1", "alice"),
        cmd!("RPUSH", "queue", "a", "b", "c"),
        cmd!("HSET", "session", "id", "42"),
        cmd!("SET", b"bin\r\n\0key".to_vec(), b"\0\r\n\xff".to_vec()),
        cmd!("SADD", "gone", "x"),
    ]);
    let records: [(&[u8], &[u8]); 5] = [
        (b"user:1", b"0"),
        (b"queue", b"0"),
        (b"session", b"60000"),
        (b"bin\r\n\0key", b"0"),
        // PTTL's "-2": the Go tool's record for a key that vanished mid-dump.
        (b"gone", b"-2"),
    ];
    let mut fixture = Vec::new();
    for (key, ttl) in records {
        let payload = s.dump(key).expect("DUMP of a key just set");
        assert!(
            !payload.windows(6).any(|w| w == SEP) && !payload.ends_with(&SEP[..3]),
            "this payload cannot be in a legacy file; pick another value"
        );
        for part in [key, SEP, &payload, SEP, ttl, SEP] {
            fixture.extend_from_slice(part);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("from-go.rump"));
    fs::write(&file, &fixture).unwrap();

    let target = Server::start();
    let run = rump(&["-from", &file, "-to", &target.url(), "--json"]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("copied"), 4.0);
    assert_eq!(run.json_field("vanished"), 1.0);
    let mut dst = target.client();
    let restored = [
        b"bin\r\n\0key".to_vec(),
        b"queue".to_vec(),
        b"session".to_vec(),
        b"user:1".to_vec(),
    ];
    assert_eq!(dst.keys(), restored);
    assert_same_values(&mut s, &mut dst, &restored);
    assert_eq!(dst.ok(&["GET", "user:1"]).as_bulk().unwrap(), "alice");
    assert_eq!(
        dst.cmd(&[b"GET", b"bin\r\n\0key"]).as_bulk().unwrap(),
        &b"\0\r\n\xff"[..]
    );
    // "60000" is relative to the restore; "0" means no expiry.
    let pttl = dst.int(&["PTTL", "session"]);
    assert!((55_000..=60_000).contains(&pttl), "PTTL {pttl}");
    for key in ["user:1", "queue"] {
        assert_eq!(dst.int(&["PTTL", key]), -1, "{key}");
    }
}

#[test]
fn keys_expired_by_restore_time_are_skipped_and_counted() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "short", "v", "PX", "600"]);
    let set_at = Instant::now();
    src.ok(&["SET", "long", "v"]);
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("backup.rump"));
    let run = rump(&["-from", &source.url(), "-to", &file, "--json"]);
    run.success();
    assert_eq!(run.json_field("copied"), 2.0, "both keys are in the dump");
    std::thread::sleep(Duration::from_millis(700).saturating_sub(set_at.elapsed()));

    let run = rump(&["-from", &file, "-to", &target.url(), "--json"]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("scanned"), 2.0);
    assert_eq!(run.json_field("copied"), 1.0);
    assert_eq!(run.json_field("vanished"), 1.0);
    assert_eq!(target.client().keys(), [b"long".to_vec()]);
}

#[test]
fn file_to_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = text(&dir.path().join("a.rump"));
    let b = text(&dir.path().join("b.rump"));
    fs::write(&a, b"").unwrap();
    for (from, to) in [(&a[..], &b[..]), (&a, "-"), ("-", &b)] {
        let run = rump(&["-from", from, "-to", to]);
        run.expect_code(2);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(names(dir.path()), ["a.rump"]);
}

#[test]
fn missing_or_unwritable_files_fail_naming_the_file() {
    let server = Server::start();
    server.client().ok(&["SET", "k", "v"]);
    let dir = tempfile::tempdir().unwrap();

    let missing = text(&dir.path().join("missing.rump"));
    let run = rump(&["-from", &missing, "-to", &server.url_db(1)]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("dump file {missing:?}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    let nowhere = text(&dir.path().join("no-such-dir").join("x.rump"));
    let run = rump(&["-from", &server.url(), "-to", &nowhere]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("dump file {nowhere:?}")),
        "{}",
        run.stderr
    );
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

    // A directory is refused before any key is read, not by the final rename.
    let run = rump(&["-from", &server.url(), "-to", &text(dir.path()), "--json"]);
    run.expect_code(1);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
    assert_eq!(run.json_field("scanned"), 0.0);
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

#[test]
fn valkey_source_through_a_dump_file_to_valkey() {
    let source = Server::start_with(Flavor::Valkey, &[]);
    let target = Server::start_with(Flavor::Valkey, &[]);
    let mut src = source.client();
    let keys = load_all(&mut src);
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("valkey.rump"));
    rump(&["-from", &source.url(), "-to", &file]).success();
    let bytes = fs::read(&file).unwrap();
    assert!(bytes.starts_with(MAGIC));
    // The header records where the dump came from.
    assert!(bytes[..64].windows(6).any(|w| w == b"valkey"));
    let mut dst = restore_and_compare(&file, &target, &mut src, &keys);
    assert_same_expiry(&mut src, &mut dst, &keys);
}
