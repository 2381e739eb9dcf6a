//! One test per fixed bug, named `r<issue>_…`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::dump::{leftovers, names, restore_and_compare, text, MAGIC};
use crate::migrate::load_every_type;
use crate::util::{rump, rump_env, rump_spawn, wait_run, Flavor, Run, Server};

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
