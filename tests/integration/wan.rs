//! Across a wide-area link (issue 12): rump between servers behind the
//! e2e bench's latency proxy, 40 ms round trip in front of each, must copy
//! completely and exactly with its default settings and with explicit
//! overrides, and its adaptive windows must grow: fewer, larger `SCAN`s
//! than on loopback.

use std::time::{Duration, Instant};

use crate::cluster::mixed_keys;
use crate::cmd;
use crate::util::proxy::LatencyProxy;
use crate::util::{assert_same_data, rump, Flavor, Run, Server};

/// Half of the 40 ms round trip every test here adds.
const ONE_WAY: Duration = Duration::from_millis(20);

/// Keys of the mixed dataset, streams included.
const MIXED: usize = 20_000;

/// Keys of the same mix copied with `--pipeline 64`: at 64 commands per
/// 40 ms round trip, 20k keys would take half a minute.
const MIXED_SMALL_WINDOWS: usize = 4_000;

/// Streams among them, each of [`STREAM_ENTRIES`] entries.
const STREAMS: usize = 200;
const STREAM_ENTRIES: usize = 5;

/// Each copy here must finish well within this.
const COPY_WITHIN: Duration = Duration::from_secs(25);

/// Strings, hashes, lists, sets and sorted sets (a third with a TTL) from
/// [`mixed_keys`], and streams, some with a TTL too: `keys` keys.
fn load_mixed(source: &Server, keys: usize) {
    let mut commands = mixed_keys("wan:", keys - STREAMS);
    for s in 0..STREAMS {
        let key = format!("wan:stream:{s}");
        for e in 1..=STREAM_ENTRIES {
            commands.push(cmd!(
                "XADD",
                key,
                format!("{e}-1"),
                "field",
                format!("{s}.{e}")
            ));
        }
        if s % 4 == 0 {
            commands.push(cmd!("PEXPIRE", key, (900_000 + s).to_string()));
        }
    }
    let mut c = source.client();
    c.pipeline_replies(&commands);
    assert_eq!(c.dbsize(), keys as i64, "keys loaded");
}

/// A proxy adding [`ONE_WAY`] each way in front of `server`.
fn behind_wan(server: &Server) -> LatencyProxy {
    LatencyProxy::start(server.port, ONE_WAY).expect("start a latency proxy")
}

fn url(proxy: &LatencyProxy) -> String {
    format!("redis://127.0.0.1:{}", proxy.port())
}

/// rump from `source` to `target`, each behind its own 40 ms proxy, with
/// `extra` arguments; checked to succeed within [`COPY_WITHIN`].
fn copy_across_wan(source: &Server, target: &Server, extra: &[&str]) -> Run {
    let (from, to) = (behind_wan(source), behind_wan(target));
    let (from_url, to_url) = (url(&from), url(&to));
    let mut args = vec!["-from", from_url.as_str(), "-to", to_url.as_str(), "--json"];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let run = rump(&args);
    let took = started.elapsed();
    run.success();
    assert!(took < COPY_WITHIN, "the copy took {took:?}");
    eprintln!("copy across 40 ms RTT with {extra:?}: {took:?}");
    run
}

/// Loads `keys` keys of the mixed dataset into a fresh `flavor` source,
/// copies them across the WAN with `extra`, and checks the target holds
/// exactly the same; returns the `SCAN` calls the source served.
fn mixed_copy_is_complete_and_exact(flavor: Flavor, keys: usize, extra: &[&str]) -> u64 {
    let source = Server::start_with(flavor, &[]);
    let target = Server::start_with(flavor, &[]);
    load_mixed(&source, keys);
    source.client().ok(&["CONFIG", "RESETSTAT"]);
    let run = copy_across_wan(&source, &target, extra);
    run.assert_reconciles();
    assert_eq!(run.json_field("copied") as usize, keys);
    assert_eq!(target.client().dbsize(), keys as i64);
    // Every key: its DUMP payload and its absolute expiry (within 1 s).
    assert_same_data(&source, &target);
    source.client().command_calls("scan")
}

#[test]
fn a_mixed_copy_across_40_ms_is_complete_and_exact() {
    mixed_copy_is_complete_and_exact(Flavor::Redis, MIXED, &[]);
}

#[test]
fn explicit_scan_count_and_pipeline_still_rule_across_40_ms() {
    let extra = ["--scan-count", "500", "--pipeline", "64"];
    let calls = mixed_copy_is_complete_and_exact(Flavor::Redis, MIXED_SMALL_WINDOWS, &extra);
    // COUNT 500 takes about 8 pages; a window grown past the override, 1 or 2.
    assert!(
        calls as usize >= MIXED_SMALL_WINDOWS / 600,
        "{calls} SCAN calls for {MIXED_SMALL_WINDOWS} keys with --scan-count 500"
    );
}

#[test]
fn a_valkey_copy_across_40_ms_is_complete_and_exact() {
    mixed_copy_is_complete_and_exact(Flavor::Valkey, MIXED, &[]);
}

/// Small keys for the window test.
const SMALL: u64 = 50_000;

/// `SCAN` calls the source served for one default copy of [`SMALL`] keys
/// from a fresh source, across the WAN or directly.
fn scan_calls(wan: bool) -> u64 {
    let source = Server::start();
    let target = Server::start();
    source.client().populate(SMALL, 16);
    source.client().ok(&["CONFIG", "RESETSTAT"]);
    let run = if wan {
        copy_across_wan(&source, &target, &[])
    } else {
        let run = rump(&["-from", &source.url(), "-to", &target.url(), "--json"]);
        run.success();
        run
    };
    assert_eq!(run.json_field("copied") as u64, SMALL);
    assert_eq!(target.client().dbsize(), SMALL as i64);
    source.client().command_calls("scan")
}

/// Fails with fixed windows (`SCAN … COUNT 1000` whatever the latency):
/// it needs rump to size its `SCAN` pages from the round trip it measures.
#[test]
fn the_adaptive_windows_grow_across_40_ms() {
    let direct = scan_calls(false);
    let across = scan_calls(true);
    eprintln!("SCAN calls for {SMALL} keys: {direct} on loopback, {across} across 40 ms");
    assert!(direct > 0, "no SCAN on loopback");
    assert!(
        across * 2 <= direct,
        "{across} SCAN calls across 40 ms, {direct} on loopback: the pages did not grow"
    );
}

/// Keys for the lanes test: enough for four lanes (40,000 keys each).
const LANE_KEYS: u64 = 200_000;

/// The cursor of every `SCAN` `server` runs while `MONITOR` watches, read
/// on a thread until [`Monitor::stop`].
struct Monitor {
    stream: std::net::TcpStream,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Monitor {
    fn start(server: &Server) -> Monitor {
        use std::io::{BufRead, Write};
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect for MONITOR");
        stream.write_all(b"MONITOR\r\n").expect("send MONITOR");
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        let mut first = String::new();
        reader.read_line(&mut first).expect("MONITOR's +OK");
        assert_eq!(first.trim_end(), "+OK");
        let thread = std::thread::spawn(move || {
            let mut cursors = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(rest) = line.split("\"SCAN\" \"").nth(1) {
                    if let Some(cursor) = rest.split('"').next() {
                        cursors.push(cursor.to_string());
                    }
                }
                line.clear();
            }
            cursors
        });
        Monitor { stream, thread }
    }

    fn stop(self) -> Vec<String> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.thread.join().expect("the MONITOR reader")
    }
}

/// A far source of [`LANE_KEYS`] keys is scanned along several lanes (its
/// first SCANs start at the lanes' cursors, 0, 2, 1 and 3 for four lanes)
/// and every key is copied exactly once: the counts match the keyspace, so
/// the seams between lanes return no key twice and lose none. Every flavor,
/// since each version's table (Redis' dict, Valkey 8's hashtable) is what
/// the lanes cut.
#[test]
fn a_far_source_is_scanned_along_lanes_and_each_key_copied_once() {
    for flavor in [
        Flavor::Redis,
        Flavor::Redis62,
        Flavor::Valkey,
        Flavor::Valkey91,
    ] {
        let source = Server::start_with(flavor, &[]);
        let target = Server::start_with(flavor, &[]);
        source.client().populate(LANE_KEYS, 16);
        let monitor = Monitor::start(&source);
        let run = copy_across_wan(&source, &target, &[]);
        let cursors = monitor.stop();
        run.assert_reconciles();
        assert_eq!(run.json_field("scanned") as u64, LANE_KEYS, "{flavor:?}");
        assert_eq!(run.json_field("copied") as u64, LANE_KEYS, "{flavor:?}");
        assert_eq!(target.client().dbsize(), LANE_KEYS as i64, "{flavor:?}");
        let first: Vec<&str> = cursors.iter().take(4).map(String::as_str).collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["0", "1", "2", "3"],
            "{flavor:?}: first SCANs {first:?}"
        );
        assert!(
            cursors.len() as u64 <= LANE_KEYS / 5_000,
            "{flavor:?}: {} SCAN calls, pages of 10,000 keys expected",
            cursors.len()
        );
        assert_same_values_sampled(&source, &target);
    }
}

/// A thousand keys spread over the keyspace hold the same value and TTL on
/// both ends (the counts above prove every key arrived).
fn assert_same_values_sampled(source: &Server, target: &Server) {
    let (mut src, mut dst) = (source.client(), target.client());
    for i in (0..LANE_KEYS).step_by((LANE_KEYS / 1000) as usize) {
        let key = format!("key:{i}");
        assert_eq!(src.dump(key.as_bytes()), dst.dump(key.as_bytes()), "{key}");
    }
}

/// `--live` across 40 ms on a source big enough for lanes: changes during
/// the scan, after it, and after a rescan (the notification connection
/// killed, so the lanes start over) all arrive, and the ends compare equal
/// key by key once rump is stopped.
#[test]
fn live_sync_along_lanes_across_40_ms_ends_with_equal_ends() {
    use crate::util::live::{changes, seed_commands, set_events, LiveRun, Writer, SCAN_COMPLETE};
    const WITHIN: Duration = Duration::from_secs(60);
    const SHORT_TTL_MS: u64 = 300;
    let source = Server::start();
    let mut c = source.client();
    c.populate(LANE_KEYS, 16);
    c.pipeline(&seed_commands(""));
    set_events(&mut c, "KA");
    let target = Server::start();
    let (from, to) = (behind_wan(&source), behind_wan(&target));
    let (from_url, to_url) = (url(&from), url(&to));
    let mut writer = Writer::start(source.port, false);
    let mut rump = LiveRun::start(&["-from", &from_url, "-to", &to_url, "--live", "--json"]);

    writer.spread(
        &changes("", 0, true, SHORT_TTL_MS),
        6,
        Duration::from_millis(100),
    );
    writer.sync("sync", WITHIN);
    rump.wait_for(SCAN_COMPLETE, WITHIN);
    writer.send(&changes("", 1, true, SHORT_TTL_MS));
    writer.sync("sync", WITHIN);

    let killed = source.client().int(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, 1, "one notification connection");
    rump.wait_for("notification connection was lost", WITHIN);
    // A key deleted before the notifications are back is a gap rump says
    // and the README owns (a scan cannot see it): write once they are.
    let deadline = Instant::now() + WITHIN;
    loop {
        let clients = source.client().run(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        let listed = clients.as_bulk().map_or(0, |b| b.len());
        if listed > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the notifications never came back"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.send(&changes("", 2, true, SHORT_TTL_MS));
    writer.sync("sync", WITHIN);
    let deadline = Instant::now() + WITHIN;
    while target.client().int(&["EXISTS", "new:2:99"]) == 0
        || !source.client().keys_matching("ttl:*").is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the changes after the rescan never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.send(&["SET last:word now".into()]);
    writer.sync("sync", WITHIN);
    rump.signal("INT");
    let run = rump.wait(WITHIN);
    run.success();
    writer.finish();
    assert!(run.json_field("rescans") >= 1.0, "{}", run.stdout);
    assert_eq!(run.json_field("failed"), 0.0, "{}", run.stdout);
    assert_same_data(&source, &target);
}

/// Values for the readers test: 240 of 512 KiB.
const BIG_VALUES: u64 = 240;

/// One TCP connection holds at most the kernel's largest socket buffer in
/// flight (4 MiB with Debian's `tcp_wmem`), so across 200 ms it carries
/// 20 MiB/s whatever rump's windows. The proxies model that: each
/// connection's delay line holds 2 MiB each way, which carries what a 4 MiB
/// window does across the round trip. rump sees its connections' round
/// trips hold about that much, reads and writes over more connections, and
/// still copies every key exactly once.
#[test]
fn a_far_server_is_read_and_written_over_more_connections_when_one_cannot_hold_the_round_trip() {
    let source = Server::start();
    let target = Server::start();
    crate::util::load_incompressible(&mut source.client(), BIG_VALUES as usize, 512 * 1024);
    let accepted = |s: &Server| {
        let info = s.client().info("stats");
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("total_connections_received")
    };
    let before = accepted(&source);
    let (from, to) = (
        LatencyProxy::start_windowed(source.port, Duration::from_millis(100), 2 << 20)
            .expect("proxy"),
        LatencyProxy::start_windowed(target.port, Duration::from_millis(100), 2 << 20)
            .expect("proxy"),
    );
    let (from_url, to_url) = (url(&from), url(&to));
    let started = Instant::now();
    let run = rump(&["-from", &from_url, "-to", &to_url, "--json"]);
    eprintln!(
        "{BIG_VALUES} values of 512 KiB across 200 ms in {:?}",
        started.elapsed()
    );
    run.success();
    run.assert_reconciles();
    // This test's own clients: the `INFO` above and the one below.
    let opened = accepted(&source) - before - 1;
    assert!(
        opened >= 2,
        "{opened} source connection(s) for {BIG_VALUES} values of 512 KiB across 200 ms\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("reading over 2 connections"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("writing over 2 connections"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json_field("copied") as u64, BIG_VALUES);
    assert_eq!(target.client().dbsize(), BIG_VALUES as i64);
    assert_same_data(&source, &target);
}
