//! One test per fixed bug, named `r<issue>_…`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::dump::{leftovers, names, restore_and_compare, text, MAGIC};
use crate::migrate::load_every_type;
use crate::util::fake::{self, Fake, Reply};
use crate::util::{
    assert_same_data, cpu_time, rump, rump_env, rump_spawn, wait_run, watch_rss, Flavor, Run,
    Running, Server,
};

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
    let bytes = fs::read(&whole).unwrap();
    // Everything but the 13-byte end marker: every block is intact.
    fs::write(&cut, &bytes[..bytes.len() - 13]).unwrap();

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

/// A character device like `/dev/null` (1, 3) or `/dev/full` (1, 7). As
/// root it is a private node made with mknod(1) in `dir`, so a regression
/// that renames over the target replaces that node and not the machine's
/// own `/dev/null`; otherwise the real one, which an unprivileged rump
/// cannot rename over anyway (the test then fails on the exit status).
fn char_device(dir: &Path, name: &str, major: u32, minor: u32) -> String {
    let private = dir.join(name);
    let made = Command::new("mknod")
        .arg(&private)
        .args(["c", &major.to_string(), &minor.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made && fs::OpenOptions::new().write(true).open(&private).is_ok() {
        text(&private)
    } else {
        let _ = fs::remove_file(&private);
        format!("/dev/{name}")
    }
}

/// The lines of `run`'s stderr that report a dump-file error (the summary
/// line follows them); a panic is never one.
fn dump_errors(run: &Run) -> Vec<&str> {
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
        .lines()
        .filter(|l| l.starts_with("rump: dump file"))
        .collect()
}

fn is_char_device(path: &str) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// `-to /dev/null` replaced the device node with a regular file (as root:
/// the temporary file was renamed over it), and `-to /dev/full` did the same
/// and exited 0 (issue 8). A target that exists and is not a regular file is
/// now opened and written in place.
#[test]
fn r8_a_device_target_is_written_in_place_never_replaced() {
    let server = Server::start();
    server
        .client()
        .ok(&["DEBUG", "POPULATE", "3000", "key", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let null = char_device(dir.path(), "null", 1, 3);
    let run = rump(&["-from", &server.url(), "-to", &null, "--json"]);
    run.success();
    assert_eq!(run.json_field("copied"), 3000.0);
    assert!(is_char_device(&null), "{null} is no longer a device");

    // Through a symlink: the device it points at is written, the link stays.
    let link = dir.path().join("to-null");
    std::os::unix::fs::symlink(&null, &link).unwrap();
    rump(&["-from", &server.url(), "-to", &text(&link)]).success();
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(is_char_device(&null), "{null} is no longer a device");

    let full = char_device(dir.path(), "full", 1, 7);
    let run = rump(&["-from", &server.url(), "-to", &full]);
    run.expect_code(1);
    let errors = dump_errors(&run);
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].starts_with(&format!(
            "rump: dump file {full:?}: write failed at byte offset "
        )),
        "{}",
        run.stderr
    );
    assert!(
        errors[0].ends_with(": no space left on device"),
        "{}",
        run.stderr
    );
    assert!(is_char_device(&full), "{full} is no longer a device");
    assert!(leftovers(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

/// A FIFO target was renamed over, so its reader never saw a byte (issue 8).
/// Now the dump streams through it, and a dump read back from a FIFO
/// restores every key.
#[test]
fn r8_a_fifo_target_receives_the_whole_dump() {
    let source = Server::start();
    let mut src = source.client();
    load_every_type(&mut src);
    // Well beyond a pipe's 64 KiB buffer: the writer must really stream.
    src.ok(&["DEBUG", "POPULATE", "5000", "bulk", "100"]);
    src.ok(&["SET", "ttl", "v", "PX", "500000"]);
    let keys = src.keys();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());

    let (tx, rx) = mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || tx.send(fs::read(path)));
    let run = rump(&["-from", &source.url(), "-to", &text(&fifo), "--json"]);
    run.success();
    assert_eq!(run.json_field("copied") as usize, keys.len());
    assert!(
        fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO was replaced"
    );
    let bytes = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the FIFO's reader got no end of file")
        .expect("read the FIFO");
    assert!(bytes.starts_with(MAGIC));

    // And back in through the same FIFO.
    let target = Server::start();
    let path = fifo.clone();
    std::thread::spawn(move || fs::write(path, bytes));
    let mut dst = restore_and_compare(&text(&fifo), &target, &mut src, &keys);
    assert!(dst.int(&["PTTL", "ttl"]) > 400_000);
    assert_eq!(names(dir.path()), ["pipe"]);
}

/// A symlink target was replaced by a regular file, cutting the link
/// (issue 8). The file it points at is now replaced atomically (temporary
/// file beside it, in its own directory), and a dangling link gets its file.
#[test]
fn r8_a_symlink_target_stays_a_link_and_its_file_is_replaced() {
    let server = Server::start();
    server.client().ok(&["DEBUG", "POPULATE", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let (data, links) = (dir.path().join("data"), dir.path().join("links"));
    fs::create_dir(&data).unwrap();
    fs::create_dir(&links).unwrap();
    fs::write(data.join("backup.rump"), b"last night").unwrap();
    // Relative targets resolve against the link's directory, not ours.
    let link = links.join("latest.rump");
    std::os::unix::fs::symlink("../data/backup.rump", &link).unwrap();
    let dangling = links.join("next.rump");
    std::os::unix::fs::symlink("../data/new.rump", &dangling).unwrap();

    for l in [&link, &dangling] {
        rump(&["-from", &server.url(), "-to", &text(l)]).success();
        assert!(fs::symlink_metadata(l).unwrap().is_symlink(), "{l:?}");
    }
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../data/backup.rump")
    );
    assert_eq!(names(&links), ["latest.rump", "next.rump"]);
    assert_eq!(names(&data), ["backup.rump", "new.rump"]);
    for name in ["backup.rump", "new.rump"] {
        let path = data.join(name);
        assert!(fs::read(&path).unwrap().starts_with(MAGIC), "{name}");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let run = rump(&["-from", &text(&link), "-to", &server.url_db(1), "--json"]);
    run.success();
    assert_eq!(run.json_field("copied"), 100.0);
}

/// `rump -to - | head -c 100` exited 0 although the backup was cut short:
/// a broken pipe on stdout was taken for a reader that had all it wanted
/// (issue 8). A dump is only whole at its end marker, so this is a failure.
#[test]
fn r8_a_stdout_reader_that_goes_away_early_fails_the_dump() {
    let source = Server::start();
    source
        .client()
        .ok(&["DEBUG", "POPULATE", "20000", "key", "100"]);
    let mut child = rump_spawn(&["-from", &source.url(), "-to", "-"]);
    let mut out = child.stdout.take().expect("piped stdout");
    let mut head = [0u8; 100];
    std::io::Read::read_exact(&mut out, &mut head).unwrap();
    assert!(head.starts_with(MAGIC));
    drop(out);
    let run = wait_run(child, "rump -to - | head -c 100", Duration::from_secs(20));
    // Exit 1, not 0 and not death by SIGPIPE (status None).
    run.expect_code(1);
    let errors = dump_errors(&run);
    assert_eq!(
        errors,
        ["rump: dump file \"-\": the reader of standard output went away before the dump was complete (the backup is incomplete)"],
        "{}",
        run.stderr
    );
}

/// Runs `rump args` to its end, killing it past `deadline`.
fn run_within(args: &[&str], deadline: Duration) -> Run {
    Running::start(args).wait(deadline)
}

/// The target loop spun at 100% CPU while the target's socket was full and
/// the server read nothing (issue 8): with the target frozen mid-copy, rump
/// burned a whole core until it thawed. Now both loops sleep until the
/// socket can take more, and the copy completes once the target is back.
#[test]
fn r8_a_frozen_target_is_waited_for_without_spinning() {
    // DUMP would compress DEBUG POPULATE's zero-padded values about 100:1;
    // uncompressed, 300 payloads of 200 KB are far more than any socket
    // buffer and rump's queues hold, so rump must block on the target. (The
    // target too, so its DUMPs compare byte for byte with the source's.)
    let uncompressed = ["--rdbcompression", "no"];
    let source = Server::start_with(Flavor::Redis, &uncompressed);
    source
        .client()
        .ok(&["DEBUG", "POPULATE", "300", "big", "200000"]);
    let target = Server::start_with(Flavor::Redis, &uncompressed);
    let (from, to) = (source.url(), target.url());
    let mut rump = Running::start(&["-from", &from, "-to", &to, "--json"]);
    let mut dst = target.client();
    let started = Instant::now();
    let landed = loop {
        let n = dst.dbsize();
        if n > 0 {
            break n;
        }
        assert!(!rump.has_exited(), "rump ended before copying a key");
        assert!(started.elapsed() < Duration::from_secs(20), "no key landed");
        std::thread::sleep(Duration::from_millis(5));
    };
    target.pause();
    assert!(landed < 100, "{landed} keys landed before the target froze");
    // A moment for the socket and rump's queues to fill; then rump has
    // nothing to do but wait.
    std::thread::sleep(Duration::from_secs(1));
    let pid = rump.pid();
    let (before, from_time) = (cpu_time(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (used, window) = (cpu_time(pid) - before, from_time.elapsed());
    let still_running = !rump.has_exited();
    target.resume();
    assert!(still_running, "rump ended while the target was frozen");
    assert!(
        used < Duration::from_millis(400),
        "rump used {used:?} of CPU in {window:?} while the target was frozen: a busy loop"
    );
    let run = rump.wait(Duration::from_secs(60));
    run.success();
    assert_eq!(run.json_field("copied"), 300.0);
    assert_same_data(&source, &target);
}

/// A target with RESTORE renamed away had every key fail one by one, each
/// with its own "unknown command" line, until the whole source was scanned
/// (issue 8). That reply dooms every write: the run now ends at the first
/// one, naming the target and the cause, with no key counted as failed.
#[test]
fn r8_a_target_without_restore_ends_the_run_at_the_first_key() {
    let source = Server::start();
    source.client().populate(5000, 10);
    let target = Server::start_with(Flavor::Redis, &["--rename-command", "RESTORE", ""]);
    let run = run_within(
        &["-from", &source.url(), "-to", &target.url(), "--json"],
        Duration::from_secs(30),
    );
    run.expect_code(1);
    let line = run.error_line();
    assert!(
        line.contains(&format!("target 127.0.0.1:{}", target.port)),
        "{line}"
    );
    assert!(line.contains("RESTORE"), "{line}");
    assert!(line.contains("disabled or renamed"), "{line}");
    assert_eq!(run.json_field("failed"), 0.0, "{}", run.stdout);
    assert!(
        run.stderr.lines().count() < 20,
        "one line per key:\n{}",
        run.stderr
    );
    assert_eq!(target.client().dbsize(), 0);
}

/// A user that may not run INFO was reported as "authentication failed"
/// (issue 8), sending the operator after a password that was right. The
/// NOPERM is now an INFO failure that says which permission to grant.
#[test]
fn r8_a_user_without_info_is_not_an_authentication_failure() {
    let source = Server::start();
    let mut admin = source.client();
    admin.ok(&[
        "ACL", "SETUSER", "nopriv", "on", ">pw", "~*", "+@all", "-info",
    ]);
    admin.ok(&["SET", "k", "v"]);
    let target = Server::start();
    let from = format!("redis://nopriv:pw@127.0.0.1:{}", source.port);
    let run = run_within(
        &["-from", &from, "-to", &target.url()],
        Duration::from_secs(30),
    );
    run.expect_code(1);
    assert!(
        !run.stderr.to_lowercase().contains("authentication failed"),
        "{}",
        run.stderr
    );
    let line = run.error_line();
    assert!(
        line.contains(&format!("source 127.0.0.1:{}", source.port)),
        "{line}"
    );
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("+info"), "{line}");
    assert_eq!(target.client().dbsize(), 0);
}

/// The legacy (Go rump) separator: "✝✝", between and after every field.
const LEGACY_SEP: &[u8] = "✝✝".as_bytes();

/// A payload damaged in a dump file was blamed on "the source writes a newer
/// DUMP format than the target reads" and ended the run (issue 8), though the
/// payload's own RDB version is one the target reads: only its checksum was
/// wrong. Now that key alone fails, named, as a checksum mismatch, and the
/// keys around it are restored.
#[test]
fn r8_a_corrupt_payload_is_a_checksum_failure_not_a_newer_format() {
    let scratch = Server::start();
    let mut s = scratch.client();
    let keys: [&[u8]; 3] = [b"first", b"second", b"third"];
    for key in keys {
        let value = format!("{}-value-", String::from_utf8_lossy(key)).repeat(8);
        s.cmd(&[b"SET", key, value.as_bytes()]);
    }
    let mut fixture = Vec::new();
    for key in keys {
        let mut payload = s.dump(key).expect("DUMP of a key just set");
        if key == b"second" {
            // The 2-byte RDB version and 8-byte CRC at the end stay intact.
            let at = payload.len() / 2;
            assert!(at < payload.len() - 10);
            payload[at] ^= 0xff;
        }
        assert!(
            !payload.windows(LEGACY_SEP.len()).any(|w| w == LEGACY_SEP),
            "this payload cannot be in a legacy file; pick another value"
        );
        for part in [key, LEGACY_SEP, &payload, LEGACY_SEP, b"0", LEGACY_SEP] {
            fixture.extend_from_slice(part);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = text(&dir.path().join("from-go.rump"));
    fs::write(&file, &fixture).unwrap();

    let target = Server::start();
    let run = run_within(
        &["-from", &file, "-to", &target.url(), "--json"],
        Duration::from_secs(30),
    );
    run.expect_code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let mut dst = target.client();
    assert_eq!(dst.keys(), [b"first".to_vec(), b"third".to_vec()]);
    for key in [&b"first"[..], b"third"] {
        assert_eq!(dst.dump(key), s.dump(key), "{key:?}");
    }
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("\"second\"") && l.contains("checksum")),
        "{}",
        run.stderr
    );
    let all = format!("{}{}", run.stderr, run.stdout);
    assert!(!all.contains("newer DUMP format"), "{all}");
    assert_eq!(run.json_field("copied"), 2.0);
    assert_eq!(run.json_field("failed"), 1.0);
}

/// The size of the fake's oversized DUMP reply: over `resp`'s 512 MiB bulk
/// limit (536,870,912 bytes).
const HUGE_DUMP: u64 = 600_000_000;
/// rump's resident memory must stay under this while it discards
/// [`HUGE_DUMP`] bytes.
const HUGE_RSS_LIMIT_KIB: u64 = 200 * 1024;

/// A DUMP reply over the bulk limit ended the whole run with a protocol
/// error (issue 8), so one oversized key stopped every other key from being
/// copied. Now the reply is discarded as it arrives, in bounded memory, that
/// key fails with a line naming it, and the run goes on.
#[test]
fn r8_a_value_over_the_limit_fails_that_key_and_the_run_goes_on() {
    let scratch = Server::start();
    let mut s = scratch.client();
    s.ok(&["SET", "k", "a small value"]);
    let payload = s.dump(b"k").expect("DUMP of a key just set");
    let keys = [b"small1".to_vec(), b"huge".to_vec(), b"small2".to_vec()];
    let fake = Fake::start(move |cmd| match (fake::name(cmd).as_str(), cmd.get(1)) {
        ("SCAN", _) => Reply::Send(fake::scan_reply("0", &keys)),
        ("DUMP", Some(key)) if key == b"huge" => Reply::ZeroBulk(HUGE_DUMP),
        ("DUMP", _) => Reply::bulk(&payload),
        ("PEXPIRETIME", _) => Reply::int(-1),
        _ => fake::plausible(cmd, 3),
    });
    let target = Server::start();
    let (from, to) = (fake.url(), target.url());
    let mut rump = Running::start(&["-from", &from, "-to", &to, "--json"]);
    let done = Arc::new(AtomicBool::new(false));
    let (peak, watcher) = watch_rss(rump.pid(), HUGE_RSS_LIMIT_KIB, Arc::clone(&done));
    let run = rump.wait(Duration::from_secs(120));
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak > 0, "rump's memory was never sampled");
    assert!(
        peak <= HUGE_RSS_LIMIT_KIB,
        "rump's memory grew to {peak} KiB (limit {HUGE_RSS_LIMIT_KIB} KiB) on an oversized value"
    );
    run.expect_code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let source = format!("source 127.0.0.1:{}", fake.port);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains(&source) && l.contains("\"huge\"") && l.contains("over the limit")),
        "{}",
        run.stderr
    );
    let mut dst = target.client();
    assert_eq!(dst.keys(), [b"small1".to_vec(), b"small2".to_vec()]);
    for key in ["small1", "small2"] {
        assert_eq!(dst.ok(&["GET", key]).as_bulk().unwrap(), "a small value");
    }
    assert_eq!(run.json_field("copied"), 2.0, "{}", run.stdout);
    assert_eq!(run.json_field("failed"), 1.0, "{}", run.stdout);
}
