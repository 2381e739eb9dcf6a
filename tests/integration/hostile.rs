//! Hostile or broken peers, played by a scripted fake source: garbage, an
//! HTTP server, replies that never come, come one byte at a time or never
//! end, and a SCAN that never finishes. Each ends with exit 1 in bounded
//! time and memory, one line naming the endpoint, and no panic.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::fake::{self, Fake, Reply};
use resp::Frame;

use crate::util::{rump_spawn, wait_run, watch_rss, Client, Run, Server};

/// How much longer than its limit a run may go on before the test stops
/// waiting: the limits are asserted on the time taken, with a clear message.
const GRACE: Duration = Duration::from_secs(5);
/// The key count the fake's DBSIZE reports.
const FAKE_KEYS: i64 = 10;
/// rump's resident memory must stay under this against an endless reply.
const RSS_LIMIT_KIB: u64 = 256 * 1024;

/// Copies from `fake` into a fresh real target with `extra` options, and
/// checks it ended within `limit`; returns how it ended.
fn run_from(fake: &Fake, extra: &[&str], limit: Duration) -> Run {
    let target = Server::start();
    let (from, to) = (fake.url(), target.url());
    let mut args = vec!["-from", from.as_str(), "-to", to.as_str(), "--json"];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let run = wait_run(
        rump_spawn(&args),
        &format!("rump {}", args.join(" ")),
        limit + GRACE,
    );
    let took = start.elapsed();
    assert!(
        took < limit,
        "rump gave up only after {took:?} (limit {limit:?})\n{}",
        run.stderr
    );
    run
}

/// Exit 1, no panic, and an error line naming the fake source; returns it.
fn failed_naming_source(run: &Run, fake: &Fake) -> String {
    run.expect_code(1);
    let line = run.error_line();
    assert!(
        line.contains(&format!("source 127.0.0.1:{}", fake.port)),
        "the error line must name the source: {line:?}\n{}",
        run.stderr
    );
    line
}

#[test]
fn garbage_instead_of_a_reply_is_a_protocol_error() {
    let fake = Fake::start(|cmd| match fake::name(cmd).as_str() {
        "INFO" => Reply::Send(b"\x00\x01garbage\r\n".to_vec()),
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let run = run_from(&fake, &[], Duration::from_secs(10));
    let line = failed_naming_source(&run, &fake);
    assert!(line.contains("protocol error"), "{line}");
}

#[test]
fn an_http_server_is_not_a_redis_server() {
    let fake = Fake::start(|_| {
        Reply::Send(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\
              Connection: close\r\n\r\nBad Request"
                .to_vec(),
        )
    });
    let run = run_from(&fake, &[], Duration::from_secs(10));
    let line = failed_naming_source(&run, &fake);
    assert!(line.contains("not a Redis server"), "{line}");
}

#[test]
fn a_reply_that_never_comes_times_out() {
    let fake = Fake::start(|cmd| match fake::name(cmd).as_str() {
        "INFO" => Reply::Never,
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let run = run_from(&fake, &["--timeout", "1"], Duration::from_secs(5));
    let line = failed_naming_source(&run, &fake);
    assert!(line.contains("timed out"), "{line}");
    assert!(
        line.contains("INFO") || line.contains("start-up"),
        "the line must name the step that timed out: {line}"
    );
}

#[test]
fn a_reply_dripped_a_byte_at_a_time_times_out() {
    let fake = Fake::start(|cmd| match fake::name(cmd).as_str() {
        // About 150 bytes at 5 a second: half a minute for one reply.
        "INFO" => Reply::Drip {
            bytes: fake::bulk(&fake::info_text(FAKE_KEYS)),
            every: Duration::from_millis(200),
        },
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let run = run_from(&fake, &["--timeout", "1"], Duration::from_secs(5));
    let line = failed_naming_source(&run, &fake);
    assert!(line.contains("timed out"), "{line}");
}

#[test]
fn an_endless_scan_reply_is_refused_in_bounded_memory() {
    let fake = Fake::start(|cmd| match fake::name(cmd).as_str() {
        "SCAN" => Reply::Endless {
            head: b"*4294967295\r\n".to_vec(),
            item: b"$1\r\na\r\n".to_vec(),
        },
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let target = Server::start();
    let (from, to) = (fake.url(), target.url());
    let args = ["-from", from.as_str(), "-to", to.as_str(), "--json"];
    let limit = Duration::from_secs(10);
    let start = Instant::now();
    let child = rump_spawn(&args);
    let done = Arc::new(AtomicBool::new(false));
    let (peak, watcher) = watch_rss(child.id(), RSS_LIMIT_KIB, Arc::clone(&done));
    let run = wait_run(child, "rump (endless SCAN reply)", limit + GRACE);
    let took = start.elapsed();
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= RSS_LIMIT_KIB,
        "rump's memory grew past {} MiB on an endless reply (killed at {peak} KiB)",
        RSS_LIMIT_KIB / 1024
    );
    failed_naming_source(&run, &fake);
    assert!(fake.count("SCAN") >= 1, "rump never scanned");
    assert!(took < limit, "gave up only after {took:?}");
}

#[test]
fn a_scan_that_never_finishes_is_an_error_not_a_loop() {
    let keys: Vec<Vec<u8>> = (0..FAKE_KEYS)
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    let fake = Fake::start(move |cmd| match fake::name(cmd).as_str() {
        // Always "more to come", and always the same keys.
        "SCAN" => Reply::Send(fake::scan_reply("1", &keys)),
        // Every key has vanished by the time it is read: nothing is written.
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let run = run_from(&fake, &[], Duration::from_secs(20));
    let line = failed_naming_source(&run, &fake);
    assert!(line.contains("SCAN") && line.contains("cursor"), "{line}");
    let scanned = run.json_field("scanned");
    assert!(
        scanned > FAKE_KEYS as f64,
        "gave up after scanning {scanned} keys: no more than DBSIZE ({FAKE_KEYS}), \
         which a real server's SCAN may well return"
    );
}

#[test]
fn a_source_that_goes_silent_mid_run_times_out() {
    let fake = Fake::start(|cmd| match fake::name(cmd).as_str() {
        "SCAN" => Reply::Never,
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let run = run_from(&fake, &["--timeout", "1"], Duration::from_secs(10));
    failed_naming_source(&run, &fake);
    assert!(fake.count("SCAN") >= 1, "rump never got past the handshake");
}

/// The fake itself, checked with a plain client, so a failure above is
/// rump's and not the script's.
#[test]
fn the_fake_server_plays_its_script() {
    let fake = Fake::start(|cmd| match fake::name(cmd).as_str() {
        "DRIP" => Reply::Drip {
            bytes: b"+OK\r\n".to_vec(),
            every: Duration::from_millis(20),
        },
        "HANG" => Reply::Never,
        "FLOOD" => Reply::Endless {
            head: b"*4294967295\r\n".to_vec(),
            item: b"$1\r\na\r\n".to_vec(),
        },
        "BYE" => Reply::Close,
        _ => fake::plausible(cmd, FAKE_KEYS),
    });
    let mut c = Client::try_connect(fake.port).unwrap();
    let info = c.info("server");
    assert!(
        info.contains("redis_version:7.0.15\r\n") && info.contains(fake::RUN_ID),
        "{info}"
    );
    assert_eq!(c.dbsize(), FAKE_KEYS);
    assert_eq!(c.run(&["PEXPIRETIME", "k"]), Frame::Integer(-2));
    assert_eq!(
        c.run(&["CLIENT", "SETNAME", "rump"]),
        Frame::Simple("OK".into())
    );
    let start = Instant::now();
    assert_eq!(c.run(&["DRIP"]), Frame::Simple("OK".into()));
    assert!(start.elapsed() >= Duration::from_millis(80), "not dripped");
    assert!(c.try_cmd(&[b"BYE"]).is_err(), "BYE must close");

    let mut hung = TcpStream::connect(("127.0.0.1", fake.port)).unwrap();
    hung.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    hung.write_all(b"*1\r\n$4\r\nHANG\r\n*1\r\n$4\r\nPING\r\n")
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        hung.read(&mut byte).is_err(),
        "HANG (and all after it) must go unanswered"
    );

    let mut flood = TcpStream::connect(("127.0.0.1", fake.port)).unwrap();
    flood.write_all(b"*1\r\n$5\r\nFLOOD\r\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    while got.len() < 1 << 20 {
        let n = flood.read(&mut chunk).unwrap();
        assert!(n > 0, "the flood stopped");
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got.starts_with(b"*4294967295\r\n$1\r\na\r\n$1\r\na\r\n"));
    drop(flood);

    assert_eq!(
        (fake.count("info"), fake.count("HANG"), fake.connections()),
        (1, 1, 3)
    );
    // Dropping the fake stops it, even with a connection still open.
    let start = Instant::now();
    drop(fake);
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(hung);
}
