//! Decode and encode throughput of `resp`, against `redis-protocol` (its
//! zero-copy `decode_bytes_mut`) and `redis` (its `Parser`) on the same bytes.
//!
//! ```text
//! nice -n 10 cargo bench -p resp --bench resp -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups:
//! - `decode/small`: 1M pipelined small replies (`+OK`, `:1`, short bulks).
//! - `decode/bulk_{100B,10KiB,1MiB}`: streams of DUMP-sized bulk replies.
//! - `encode/restore_*`: RESTORE commands through `Requests`, payload shared
//!   (`io_slices` + `advance`, no copy), vs the same flattened with `to_bytes`.
//! - `inline/*`: copy a payload into the header buffer vs send it as its own
//!   iovec, written to a Unix socket; picks `DEFAULT_INLINE_MAX`.
//!
//! Decoding always runs over a fresh `BytesMut` holding the whole stream,
//! taking frames until it is empty; making that buffer is not timed. After the
//! groups, a table prints each decoder's median throughput and ours/theirs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use resp::{Decoder, Requests};

/// Per (input, decoder): every timed pass, for the closing ratio table.
static PASSES: Mutex<BTreeMap<(String, &'static str), Vec<Duration>>> = Mutex::new(BTreeMap::new());

const OURS: &str = "resp";
const PROTOCOL: &str = "redis-protocol";
const REDIS: &str = "redis";

/// 1M replies cycling through `+OK`, `:1`, a 5-byte and a 16-byte bulk.
fn small_stream() -> (Vec<u8>, usize) {
    let cycle: [&[u8]; 4] = [
        b"+OK\r\n",
        b":1\r\n",
        b"$5\r\nhello\r\n",
        b"$16\r\nuser:1000:visits\r\n",
    ];
    let n = 1_000_000;
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(cycle[i % cycle.len()]);
    }
    (out, n)
}

/// `total` bytes' worth (at least one) of `len`-byte bulk replies.
fn bulk_stream(len: usize, total: usize) -> (Vec<u8>, usize) {
    let n = (total / len).max(1);
    let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    let mut out = Vec::with_capacity(n * (len + 16));
    for _ in 0..n {
        out.extend_from_slice(format!("${len}\r\n").as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
    }
    (out, n)
}

/// Decodes every frame with `resp`, returning the count.
fn ours(mut buf: BytesMut) -> usize {
    let mut decoder = Decoder::new();
    let mut n = 0;
    while let Some(frame) = decoder.decode(&mut buf).expect("valid stream") {
        black_box(frame);
        n += 1;
    }
    n
}

fn redis_protocol(mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Some((frame, _, _)) =
        redis_protocol::resp2::decode::decode_bytes_mut(&mut buf).expect("valid stream")
    {
        black_box(frame);
        n += 1;
    }
    n
}

/// `redis` parses from a `Read`er; its decoder keeps what it read ahead
/// between calls, so one parser walks the whole stream.
fn redis_parser(buf: BytesMut, frames: usize) -> usize {
    let mut parser = redis::Parser::new();
    let mut reader: &[u8] = &buf;
    for _ in 0..frames {
        black_box(parser.parse_value(&mut reader).expect("valid stream"));
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("slice read");
    assert!(rest.is_empty(), "redis parser stopped early");
    frames
}

/// Times `pass` over fresh copies of `input`, `iters` times, excluding the copy.
fn timed(
    input: &[u8],
    iters: u64,
    key: (&str, &'static str),
    pass: &dyn Fn(BytesMut) -> usize,
    frames: usize,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut passes = Vec::new();
    for _ in 0..iters {
        let buf = BytesMut::from(input);
        let start = Instant::now();
        let n = pass(buf);
        let took = start.elapsed();
        assert_eq!(n, frames);
        total += took;
        passes.push(took);
    }
    PASSES
        .lock()
        .expect("bench is single-threaded")
        .entry((key.0.to_string(), key.1))
        .or_default()
        .extend(passes);
    total
}

/// The decode inputs. Bulk streams are 1 MiB (4 MiB for 1 MiB bulks), so the
/// freshly written buffer is cache-resident as a socket read leaves it; the
/// `_cold` ones are 16 MiB, where every frame costs a cache miss on its
/// trailing CRLF for any decoder and the ratio tends to 1.
fn inputs() -> Vec<(&'static str, (Vec<u8>, usize))> {
    vec![
        ("small", small_stream()),
        ("bulk_100B", bulk_stream(100, 1 << 20)),
        ("bulk_10KiB", bulk_stream(10 << 10, 1 << 20)),
        ("bulk_1MiB", bulk_stream(1 << 20, 4 << 20)),
        ("bulk_100B_cold", bulk_stream(100, 16 << 20)),
        ("bulk_10KiB_cold", bulk_stream(10 << 10, 16 << 20)),
    ]
}

fn decode(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    for (name, (input, frames)) in &inputs {
        let frames = *frames;
        assert_eq!(ours(BytesMut::from(&input[..])), frames);
        assert_eq!(redis_protocol(BytesMut::from(&input[..])), frames);
        assert_eq!(redis_parser(BytesMut::from(&input[..]), frames), frames);
        group.throughput(Throughput::Bytes(input.len() as u64));
        let decoders: [(&'static str, &dyn Fn(BytesMut) -> usize); 3] = [
            (OURS, &ours),
            (PROTOCOL, &redis_protocol),
            (REDIS, &|buf| redis_parser(buf, frames)),
        ];
        for (decoder, pass) in decoders {
            group.bench_function(BenchmarkId::new(*name, decoder), |b| {
                b.iter_custom(|iters| timed(input, iters, (name, decoder), pass, frames));
            });
        }
    }
    group.finish();
}

/// Queues `n` `RESTORE key ttl payload REPLACE ABSTTL` commands.
fn restores(out: &mut Requests, payload: &Bytes, n: usize) {
    for i in 0..n {
        out.start(6);
        out.arg(b"RESTORE");
        out.arg(format!("key:{i:08}").as_bytes());
        out.arg_int(1_700_000_000_000 + i as i64);
        out.arg_shared(payload.clone());
        out.arg(b"REPLACE");
        out.arg(b"ABSTTL");
    }
}

/// Hands the queue out as `write_vectored` would see it, without a socket.
fn drain(out: &mut Requests) -> usize {
    let mut total = 0;
    while !out.is_empty() {
        let n = {
            let mut slices = Vec::with_capacity(64);
            out.io_slices(&mut slices);
            slices.iter().map(|s| black_box(s.len())).sum()
        };
        out.advance(n);
        total += n;
    }
    total
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.sample_size(10);
    for (name, len) in [
        ("restore_100B", 100),
        ("restore_10KiB", 10 << 10),
        ("restore_1MiB", 1 << 20),
    ] {
        // The payload is a slice of a read buffer, as a decoded DUMP reply is.
        let (stream, _) = bulk_stream(len, len);
        let payload = Decoder::new()
            .decode(&mut BytesMut::from(&stream[..]))
            .expect("valid")
            .and_then(|f| f.as_bulk().cloned())
            .expect("a bulk");
        let n = (16 << 20) / len;
        let mut out = Requests::new();
        restores(&mut out, &payload, n);
        group.throughput(Throughput::Bytes(out.len() as u64));
        drain(&mut out);
        group.bench_function(BenchmarkId::new(name, "io_slices"), |b| {
            b.iter(|| {
                restores(&mut out, &payload, n);
                drain(&mut out)
            });
        });
        group.bench_function(BenchmarkId::new(name, "to_bytes_copy"), |b| {
            b.iter(|| {
                restores(&mut out, &payload, n);
                let all = out.to_bytes();
                out.advance(out.len());
                all.len()
            });
        });
    }
    group.finish();
}

/// Copy vs share: RESTOREs with `len`-byte payloads written to a Unix socket
/// whose peer drains it, with the payload inlined (copied) or its own iovec.
fn inline(c: &mut Criterion) {
    use std::os::unix::net::UnixStream;
    let mut group = c.benchmark_group("inline");
    group.sample_size(10);
    let (mut tx, mut rx) = UnixStream::pair().expect("socketpair");
    let reader = std::thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 20];
        while let Ok(n) = rx.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    const BATCH: usize = 256;
    for len in [64, 256, 512, 1024, 2048, 4096, 8192, 16384] {
        let payload = Bytes::from(vec![0xa5u8; len]);
        let mut out = Requests::new();
        restores(&mut out, &payload, BATCH);
        group.throughput(Throughput::Bytes(out.len() as u64));
        out.advance(out.len());
        for (mode, inline_max) in [("copy", usize::MAX), ("iovec", 0)] {
            let mut out = Requests::with_inline_max(inline_max);
            group.bench_function(BenchmarkId::new(mode, len), |b| {
                b.iter(|| {
                    restores(&mut out, &payload, BATCH);
                    while !out.is_empty() {
                        let n = {
                            let mut slices = Vec::with_capacity(64);
                            out.io_slices(&mut slices);
                            tx.write_vectored(&slices).expect("socket write")
                        };
                        out.advance(n);
                    }
                });
            });
        }
    }
    group.finish();
    drop(tx);
    reader.join().expect("reader");
}

/// The closing table: median throughput per decoder and ours over the faster
/// of the other two.
fn report(sizes: &BTreeMap<String, usize>) {
    let passes = PASSES.lock().expect("bench is single-threaded");
    let median = |input: &str, decoder: &'static str| -> Option<Duration> {
        let mut v = passes.get(&(input.to_string(), decoder))?.clone();
        v.sort();
        v.get(v.len() / 2).copied()
    };
    println!("\ndecode throughput (median pass; MiB/s) and ratio ours / faster of the others");
    println!(
        "{:<12} {:>10} {:>15} {:>10} {:>12}",
        "input", OURS, PROTOCOL, REDIS, "ratio"
    );
    for (input, bytes) in sizes {
        let mibs = |d: Duration| *bytes as f64 / d.as_secs_f64() / (1 << 20) as f64;
        let (Some(a), Some(b), Some(c)) = (
            median(input, OURS),
            median(input, PROTOCOL),
            median(input, REDIS),
        ) else {
            continue;
        };
        let ratio = b.min(c).as_secs_f64() / a.as_secs_f64();
        println!(
            "{input:<12} {:>10.0} {:>15.0} {:>10.0} {:>11.2}x",
            mibs(a),
            mibs(b),
            mibs(c),
            ratio
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    decode(&mut c);
    encode(&mut c);
    inline(&mut c);
    c.final_summary();
    let sizes: BTreeMap<String, usize> = inputs()
        .into_iter()
        .map(|(name, (input, _))| (name.to_string(), input.len()))
        .collect();
    report(&sizes);
}
