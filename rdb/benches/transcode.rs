//! Transcoding throughput per type: how many MiB of DUMP payload per second
//! the crate decodes, re-encodes for an older target, or footer-rewrites.
//!
//! ```text
//! nice -n 10 cargo bench -p rdb --bench transcode -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Inputs are the Valkey 9.1 fixtures (`tests/fixtures/valkey-9.1/`), each
//! the newest encoding of its type: listpack and quicklist lists, intset,
//! listpack and hashtable sets, listpack and skiplist sorted sets, listpack,
//! hashtable and field-TTL hashes, streams, and LZF and HyperLogLog strings.
//! Per input:
//!
//! - `decode`: payload → value (CRC check included);
//! - `reencode`: `decode` + `encode` for RDB 10 (Redis 7.0), the path of a
//!   type the target lacks;
//! - `footer`: `rewrite_footer` for RDB 10, the path of a type it has.
//!
//! Throughput counts payload bytes in. After the groups, a table prints
//! each path's median MiB/s.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};

const INPUTS: [&str; 16] = [
    "str_lzf",
    "hll_dense",
    "list_small",
    "list_large",
    "list_compressed",
    "set_intset",
    "set_small",
    "set_large",
    "set_large_ints",
    "zset_small",
    "zset_large",
    "hash_small",
    "hash_large",
    "hash_ttl_large",
    "stream_large",
    "stream_groups",
];

const PATHS: [&str; 3] = ["decode", "reencode", "footer"];

/// A payload's size and every timed pass's duration per operation.
type Passes = (usize, Vec<Duration>);

/// Per (input, path).
static PASSES: Mutex<BTreeMap<(&'static str, &'static str), Passes>> = Mutex::new(BTreeMap::new());

fn fixture(key: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/valkey-9.1")
        .join(format!("{key}.dump"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn run(payload: &Bytes, path: &str) {
    match path {
        "decode" => {
            black_box(rdb::decode_bytes(payload.clone()).expect("decodes"));
        }
        "reencode" => {
            let dump = rdb::decode_bytes(payload.clone()).expect("decodes");
            let options = rdb::EncodeOptions {
                drop_field_ttl: true,
            };
            black_box(rdb::encode_with(&dump.value, 10, &options).expect("encodes"));
        }
        _ => {
            black_box(rdb::rewrite_footer(payload, 10).expect("valid"));
        }
    }
}

fn bench(c: &mut Criterion) {
    for input in INPUTS {
        let payload = fixture(input);
        let mut group = c.benchmark_group(input);
        group.throughput(Throughput::Bytes(payload.len() as u64));
        for path in PATHS {
            group.bench_function(path, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        run(&payload, path);
                    }
                    let elapsed = start.elapsed();
                    let mut passes = PASSES.lock().expect("not poisoned");
                    let entry = passes
                        .entry((input, path))
                        .or_insert_with(|| (payload.len(), Vec::new()));
                    entry.1.push(elapsed.div_f64(iters.max(1) as f64));
                    elapsed
                });
            });
        }
        group.finish();
    }
}

fn table() {
    let passes = PASSES.lock().expect("not poisoned");
    println!("\n| input | payload bytes | decode MiB/s | re-encode MiB/s | footer MiB/s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for input in INPUTS {
        let mut row = format!("| {input} |");
        let mut size = 0;
        let mut cells = String::new();
        for path in PATHS {
            let Some((bytes, times)) = passes.get(&(input, path)) else {
                cells += " |";
                continue;
            };
            size = *bytes;
            let mut times = times.clone();
            times.sort();
            let median = times[times.len() / 2].as_secs_f64();
            let mib_s = *bytes as f64 / (1024.0 * 1024.0) / median;
            cells += &format!(" {mib_s:.0} |");
        }
        row += &format!(" {size} |{cells}");
        println!("{row}");
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    table();
}
