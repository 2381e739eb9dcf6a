//! The data each server of the cross-version tests holds: every core type,
//! in every encoding that server writes (the same commands make listpacks on
//! one version and hashtables on another), so that every type byte the
//! transcoder meets comes from a real server.

use std::collections::{BTreeMap, BTreeSet};

use resp::Frame;

use super::Version;
use crate::cmd;
use crate::util::Client;

/// Elements in each large collection: far past every `*-max-*-entries`
/// default (128 to 512), so the server holds and dumps it as a hashtable,
/// skiplist or many-node quicklist.
pub const LARGE: usize = 10_000;

/// The absolute expiry (Unix ms) of every key that has one: an hour from
/// the first load, the same for every server of the run.
pub fn expiry_ms() -> i64 {
    static AT: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *AT.get_or_init(|| now_ms() + 3_600_000)
}

/// A pending entry's delivery time set with `XCLAIM … TIME`: long ago, so a
/// target that reset it to its load time would show an idle time hours
/// off, not milliseconds.
const DELIVERED_AT_MS: i64 = 1_600_000_000_000;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Loads db 0 of `c`'s server (a `version` server) with the data set, then
/// checks it holds every encoding the version makes.
pub fn load(c: &mut Client, version: Version) {
    let at = expiry_ms().to_string();
    let mut commands = strings(&at);
    commands.extend(lists(&at));
    commands.extend(sets());
    commands.extend(sorted_sets(&at));
    commands.extend(hashes(&at));
    commands.extend(streams(&at));
    c.pipeline(&commands);
    // A list whose inner nodes the server LZF-compresses in its DUMP.
    c.ok(&["CONFIG", "SET", "list-compress-depth", "1"]);
    let mut compressed = cmd!("RPUSH", "list:compressed");
    compressed.extend((0..3000).map(|i| format!("compressible-element-{i:05}").into_bytes()));
    c.pipeline(&[compressed]);
    c.ok(&["CONFIG", "SET", "list-compress-depth", "0"]);
    if version.major >= 7 {
        // Quicklist plain nodes (7.0+): elements over the packed threshold.
        c.ok(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100"]);
        let big = "p".repeat(300);
        c.ok(&["RPUSH", "list:plain", "small", &big, "tail", &big]);
        c.ok(&["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1073741824"]);
    }
    assert_encodings(c, version);
}

/// Strings: short, raw, integers at the edges of each width, not-quite
/// integers, binary, empty, long and compressible, HyperLogLogs.
fn strings(at: &str) -> Vec<Vec<Vec<u8>>> {
    let binary: Vec<u8> = (0..=255u8).collect();
    let mut hll_dense = cmd!("PFADD", "hll:dense");
    hll_dense.extend((0..5000).map(|i| format!("e{i}").into_bytes()));
    vec![
        cmd!("SET", "str:embstr", "hello world"),
        cmd!("SET", "str:raw", "r".repeat(100)),
        cmd!("SET", "str:int", "12345"),
        cmd!("SET", "str:int:neg", "-7"),
        cmd!("SET", "str:int:32", "-2000000000"),
        cmd!("SET", "str:int:max", "9223372036854775807"),
        cmd!("SET", "str:int:min", "-9223372036854775808"),
        cmd!("SET", "str:not-int", "007"),
        cmd!("SET", "str:binary", binary),
        cmd!("SET", "str:empty", ""),
        cmd!("SET", "str:lzf", "abcdefgh".repeat(12_800)),
        cmd!("SET", "str:ttl", "expiring", "PXAT", at),
        cmd!(
            "SET",
            b"bin:\x00\xff\r\n key".to_vec(),
            b"\x80\x00\xfe".to_vec()
        ),
        cmd!("PFADD", "hll:sparse", "a", "b", "c", "d", "e"),
        hll_dense,
    ]
}

fn lists(at: &str) -> Vec<Vec<Vec<u8>>> {
    let mut large = cmd!("RPUSH", "list:large");
    large.extend((0..LARGE).map(|i| format!("v{i}").into_bytes()));
    let mut large_ints = cmd!("RPUSH", "list:large:ints");
    large_ints.extend((0..LARGE as i64).map(|i| (i * 7919 - 40_000_000).to_string().into_bytes()));
    vec![
        cmd!("RPUSH", "list:small", "a", "b", "c", "hello world", ""),
        cmd!(
            "RPUSH",
            "list:ints",
            "1",
            "-1",
            "127",
            "128",
            "-4096",
            "4095",
            "32767",
            "-32768",
            "8388607",
            "2147483647",
            "9223372036854775807",
            "-9223372036854775808"
        ),
        large,
        large_ints,
        cmd!("RPUSH", "list:ttl", "a", "b"),
        cmd!("PEXPIREAT", "list:ttl", at),
    ]
}

fn sets() -> Vec<Vec<Vec<u8>>> {
    let mut large = cmd!("SADD", "set:large");
    large.extend((0..LARGE).map(|i| format!("m{i}").into_bytes()));
    let mut large_ints = cmd!("SADD", "set:large:ints");
    large_ints.extend((0..LARGE as i64).map(|i| (i * 3 - 5000).to_string().into_bytes()));
    vec![
        cmd!(
            "SADD",
            "set:intset",
            "1",
            "2",
            "3",
            "-5",
            "100000",
            "5000000000"
        ),
        cmd!("SADD", "set:small", "a", "b", "c", b"\x00\xff".to_vec()),
        large,
        large_ints,
    ]
}

/// Scores no decimal text rounds to exactly: infinities, the smallest
/// subnormal, the largest finite, thirds and tenths.
const EXTREME_SCORES: [(&str, &str); 12] = [
    ("1", "one"),
    ("2.5", "two-and-a-half"),
    ("-3", "minus-three"),
    ("inf", "pinf"),
    ("-inf", "ninf"),
    ("0.1", "tenth"),
    ("5e-324", "tiny"),
    ("-2.2250738585072014e-308", "neg-min-normal"),
    ("1.7976931348623157e308", "huge"),
    ("0.3333333333333333", "third"),
    ("1e-300", "small"),
    ("0", "zero"),
];

fn sorted_sets(at: &str) -> Vec<Vec<Vec<u8>>> {
    let mut small = cmd!("ZADD", "zset:small");
    for (score, member) in EXTREME_SCORES {
        small.push(score.into());
        small.push(member.into());
    }
    let mut large = cmd!("ZADD", "zset:large");
    for i in 0..LARGE {
        // i / 3: most of them with no exact binary fraction.
        large.push(format!("{}", i as f64 / 3.0).into_bytes());
        large.push(format!("z{i}").into_bytes());
    }
    for (score, member) in EXTREME_SCORES {
        large.push(score.into());
        large.push(member.into());
    }
    vec![
        small,
        large,
        cmd!("ZADD", "zset:ttl", "1.5", "a", "-0.25", "b"),
        cmd!("PEXPIREAT", "zset:ttl", at),
    ]
}

fn hashes(at: &str) -> Vec<Vec<Vec<u8>>> {
    let mut large = cmd!("HSET", "hash:large");
    for i in 0..LARGE {
        large.push(format!("f{i}").into_bytes());
        large.push(format!("value-{}", i * 31).into_bytes());
    }
    vec![
        cmd!(
            "HSET",
            "hash:small",
            "a",
            "1",
            "b",
            "hello",
            "c",
            "-300",
            "empty",
            "",
            b"\x00bin".to_vec(),
            b"\xff\xfe".to_vec()
        ),
        large,
        cmd!("HSET", "hash:ttl", "x", "1", "y", "2"),
        cmd!("PEXPIREAT", "hash:ttl", at),
    ]
}

/// Streams: fields like and unlike the master entry, many nodes, deleted
/// entries and a deleted last entry, an emptied stream, a trimmed one,
/// consumer groups with pending entries (one of them deleted from the
/// stream, some claimed with an old delivery time and a retry count) and a
/// consumer that never read.
fn streams(at: &str) -> Vec<Vec<Vec<u8>>> {
    let mut commands = vec![
        cmd!("XADD", "stream:small", "1-1", "a", "1", "b", "2"),
        cmd!("XADD", "stream:small", "1-2", "a", "3", "b", "4"),
        cmd!("XADD", "stream:small", "2-0", "other", "field"),
    ];
    for i in 1..=2000 {
        let id = format!("{i}-0");
        commands.push(cmd!(
            "XADD",
            "stream:large",
            id,
            "f",
            format!("v{i}"),
            "n",
            i.to_string()
        ));
    }
    for i in 1..=4 {
        commands.push(cmd!(
            "XADD",
            "stream:deleted",
            format!("{i}-0"),
            "f",
            i.to_string()
        ));
    }
    commands.extend([
        cmd!("XDEL", "stream:deleted", "2-0"),
        // The last entry: last-generated-id stays 4-0.
        cmd!("XDEL", "stream:deleted", "4-0"),
        cmd!("XADD", "stream:emptied", "5-0", "f", "1"),
        cmd!("XDEL", "stream:emptied", "5-0"),
        cmd!(
            "XGROUP",
            "CREATE",
            "stream:group-only",
            "g",
            "0",
            "MKSTREAM"
        ),
    ]);
    for i in 1..=100 {
        commands.push(cmd!(
            "XADD",
            "stream:trimmed",
            "MAXLEN",
            "10",
            format!("{i}-0"),
            "f",
            i.to_string()
        ));
    }
    for i in 1..=10 {
        commands.push(cmd!(
            "XADD",
            "stream:groups",
            format!("{i}-0"),
            "f",
            format!("v{i}")
        ));
    }
    let delivered = DELIVERED_AT_MS.to_string();
    commands.extend([
        cmd!("XGROUP", "CREATE", "stream:groups", "g1", "0"),
        cmd!("XGROUP", "CREATE", "stream:groups", "g2", "$"),
        cmd!("XGROUP", "CREATE", "stream:groups", "g3", "3-0"),
        cmd!(
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "stream:groups",
            ">"
        ),
        cmd!(
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            "stream:groups",
            ">"
        ),
        cmd!("XACK", "stream:groups", "g1", "2-0"),
        cmd!("XGROUP", "CREATECONSUMER", "stream:groups", "g1", "idle"),
        cmd!(
            "XREADGROUP",
            "GROUP",
            "g3",
            "carol",
            "STREAMS",
            "stream:groups",
            ">"
        ),
        // 1-0 moves to bob, delivered long ago, delivered five times.
        cmd!(
            "XCLAIM",
            "stream:groups",
            "g1",
            "bob",
            "0",
            "1-0",
            "TIME",
            &delivered,
            "RETRYCOUNT",
            "5",
            "JUSTID"
        ),
        // Pending in g3, gone from the stream.
        cmd!("XDEL", "stream:groups", "4-0"),
        cmd!("XADD", "stream:ttl", "1-0", "f", "v"),
        cmd!("PEXPIREAT", "stream:ttl", at),
    ]);
    commands
}

/// Panics unless `c`'s db 0 holds every encoding `version` makes of each
/// type (`OBJECT ENCODING`, `PFDEBUG ENCODING`): the proof that the copies
/// meet every type byte the server writes.
fn assert_encodings(c: &mut Client, version: Version) {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in c.keys() {
        let kind = text(&c.cmd(&[b"TYPE", &key]));
        let encoding = text(&c.cmd(&[b"OBJECT", b"ENCODING", &key]));
        seen.entry(kind).or_default().insert(encoding);
    }
    let packed = if version.major >= 7 {
        "listpack"
    } else {
        "ziplist"
    };
    // Lists of listpacks and sets of listpacks came with 7.2 (Valkey 8).
    let newer = version.rdb >= 11;
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut expect = |kind: &str, encodings: &[&str]| {
        expected.insert(
            kind.into(),
            encodings.iter().map(|e| e.to_string()).collect(),
        );
    };
    expect("string", &["embstr", "int", "raw"]);
    if newer {
        expect("list", &["listpack", "quicklist"]);
        expect("set", &["hashtable", "intset", "listpack"]);
    } else {
        expect("list", &["quicklist"]);
        expect("set", &["hashtable", "intset"]);
    }
    expect("zset", &[packed, "skiplist"]);
    expect("hash", &["hashtable", packed]);
    expect("stream", &["stream"]);
    assert_eq!(
        seen, expected,
        "{}: encodings of the data set",
        version.name
    );
    for (key, encoding) in [("hll:sparse", "sparse"), ("hll:dense", "dense")] {
        let reply = c.ok(&["PFDEBUG", "ENCODING", key]);
        assert_eq!(text(&reply), encoding, "{}: {key}", version.name);
    }
}

/// Loads db `db` of a Valkey 9.1 server with hashes with field TTLs (one
/// small in a listpack-sized hash, one large, one whose every field and the
/// key itself expire, one with a field that has expired but is still held,
/// one whose every field has) and keys without. Active expiry is turned
/// off for good on this server, so the expired fields stay in the DUMP
/// payloads, as they do on a busy server until something touches them.
pub fn load_field_ttls(c: &mut Client, db: u32) {
    c.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    c.ok(&["SELECT", &db.to_string()]);
    let at = expiry_ms().to_string();
    let mut large = cmd!("HSET", "fttl:large");
    for i in 0..1000 {
        large.push(format!("f{i}").into_bytes());
        large.push(format!("v{i}").into_bytes());
    }
    let mut commands = vec![
        hsetex("fttl:small", ["PXAT", &at], &["a", "1", "b", "2"]),
        cmd!("HSET", "fttl:small", "c", "3"),
        large,
        hsetex("fttl:all", ["PXAT", &at], &["x", "1", "y", "2"]),
        cmd!("PEXPIREAT", "fttl:all", &at),
        cmd!("HSET", "fttl:expired", "kept", "1"),
        hsetex("fttl:expired", ["PX", "1"], &["gone", "2"]),
        hsetex("fttl:all-expired", ["PX", "1"], &["a", "1", "b", "2"]),
        cmd!("SET", "plain:string", "v"),
        cmd!("HSET", "plain:hash", "a", "1", "b", "2"),
        cmd!("RPUSH", "plain:list", "a", "b"),
    ];
    for i in (0..1000).step_by(3) {
        let field_at = (expiry_ms() + i).to_string();
        commands.push(cmd!(
            "HPEXPIREAT",
            "fttl:large",
            field_at,
            "FIELDS",
            "1",
            format!("f{i}")
        ));
    }
    c.pipeline(&commands);
    // Past the 1 ms TTLs before any copy.
    std::thread::sleep(std::time::Duration::from_millis(10));
    let held = c.ok(&["HLEN", "fttl:all-expired"]);
    assert_eq!(held, Frame::Integer(2), "the expired fields are still held");
}

/// `HSETEX key WHEN… FIELDS n field value…` (Valkey 9).
fn hsetex(key: &str, when: [&str; 2], pairs: &[&str]) -> Vec<Vec<u8>> {
    let mut command = cmd!("HSETEX", key, when[0], when[1], "FIELDS");
    command.push((pairs.len() / 2).to_string().into_bytes());
    command.extend(pairs.iter().map(|p| p.as_bytes().to_vec()));
    command
}

/// A status or bulk reply as text.
pub fn text(frame: &Frame) -> String {
    match frame {
        Frame::Simple(b) | Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}
