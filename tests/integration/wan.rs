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
