//! Server → server copies: every type byte-exact, binary data, filters and
//! the options that change what is written.

use crate::cmd;
use crate::util::{rump, Client, Flavor, Server};

/// Loads one key of every type, plus binary-hostile names and values.
pub fn load_every_type(c: &mut Client) -> Vec<Vec<u8>> {
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let commands = vec![
        cmd!("SET", "string", "hello"),
        cmd!("SET", "int", "12345"),
        cmd!("SET", "empty", ""),
        cmd!("SET", big_key(), &big),
        cmd!("RPUSH", "list", "a", "b", "c", "a"),
        cmd!("SADD", "set", "x", "y", "z"),
        cmd!("SADD", "intset", "1", "2", "3"),
        cmd!("ZADD", "zset", "1.5", "one", "2", "two", "-3", "minus"),
        cmd!("HSET", "hash", "f1", "v1", "f2", "v2"),
        cmd!("XADD", "stream", "1-1", "field", "value"),
        cmd!("XADD", "stream", "2-1", "field", "other"),
        cmd!("XGROUP", "CREATE", "stream", "group", "0"),
        cmd!("PFADD", "hll", "a", "b", "c", "d"),
        cmd!(
            "SET",
            b"crlf\r\nkey".to_vec(),
            b"value\r\nwith\r\ncrlf".to_vec()
        ),
        cmd!("SET", b"nul\0key".to_vec(), b"\0\0\0".to_vec()),
        cmd!(
            "SET",
            b"\xff\xfe non-utf8".to_vec(),
            b"\x80\x81\x82".to_vec()
        ),
        cmd!("SET", "sep✝✝key", "sep✝✝value"),
        cmd!("SET", b"".to_vec(), "the empty key"),
    ];
    // A large hash and list so the encodings differ from the small ones.
    let mut many = vec![b"HSET".to_vec(), b"bighash".to_vec()];
    for i in 0..2000 {
        many.push(format!("field{i}").into_bytes());
        many.push(format!("value{i}").into_bytes());
    }
    let mut all = commands;
    all.push(many);
    c.pipeline(&all);
    c.keys()
}

fn big_key() -> &'static str {
    "big"
}

/// Asserts every key of `keys` holds the same value on both servers.
///
/// Values are compared by DUMP first; where the encodings iterate in hash
/// order (large hashes and sets), by a sorted, type-aware reading instead.
pub fn assert_same_values(src: &mut Client, dst: &mut Client, keys: &[Vec<u8>]) {
    for key in keys {
        let a = src.dump(key);
        assert!(
            a.is_some(),
            "{:?} missing on the source",
            String::from_utf8_lossy(key)
        );
        if a == dst.dump(key) {
            continue;
        }
        assert_eq!(
            canonical(src, key),
            canonical(dst, key),
            "{:?} differs",
            String::from_utf8_lossy(key)
        );
    }
}

/// A value as sorted frames, independent of the server's internal order.
pub fn canonical(c: &mut Client, key: &[u8]) -> Vec<String> {
    let kind = match c.cmd(&[b"TYPE", key]) {
        resp::Frame::Simple(t) => String::from_utf8_lossy(&t).into_owned(),
        other => panic!("TYPE -> {other:?}"),
    };
    let reply = match kind.as_str() {
        "string" => c.cmd(&[b"GET", key]),
        "list" => c.cmd(&[b"LRANGE", key, b"0", b"-1"]),
        "set" => c.cmd(&[b"SMEMBERS", key]),
        "zset" => c.cmd(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]),
        "hash" => c.cmd(&[b"HGETALL", key]),
        "stream" => c.cmd(&[b"XRANGE", key, b"-", b"+"]),
        "none" => return vec!["(missing)".into()],
        other => panic!("no canonical form for type {other}"),
    };
    let mut items: Vec<String> = match reply {
        resp::Frame::Array(items) => items.iter().map(|f| format!("{f:?}")).collect(),
        other => vec![format!("{other:?}")],
    };
    if kind == "hash" {
        let mut pairs: Vec<String> = items.chunks(2).map(|p| p.join("=")).collect();
        pairs.sort();
        return pairs;
    }
    if kind == "set" {
        items.sort();
    }
    items.insert(0, kind);
    items
}

#[test]
fn every_type_is_copied_byte_exact() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    let keys = load_every_type(&mut src);
    assert_eq!(keys.len(), 17, "{keys:?}");

    let run = rump(&["-from", &source.url(), "-to", &target.url(), "--json"]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("copied") as usize, keys.len());

    let mut dst = target.client();
    assert_eq!(dst.keys(), keys);
    assert_same_values(&mut src, &mut dst, &keys);
    // The consumer group travelled inside the stream's payload.
    let groups = dst.ok(&["XINFO", "GROUPS", "stream"]);
    assert!(format!("{groups:?}").contains("group"));
}

#[test]
fn many_keys_across_many_scan_pages_and_batches() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["DEBUG", "POPULATE", "50000", "key", "32"]);
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--scan-count",
        "100",
        "--pipeline",
        "64",
        "--json",
    ]);
    run.success();
    run.assert_reconciles();
    let mut dst = target.client();
    assert_eq!(dst.dbsize(), 50000);
    assert_eq!(run.json_field("copied"), 50000.0);
    assert_same_values(
        &mut src,
        &mut dst,
        &[b"key:0".to_vec(), b"key:49999".to_vec()],
    );
}

#[test]
fn empty_source_copies_nothing_and_succeeds() {
    let source = Server::start();
    let target = Server::start();
    let run = rump(&["-from", &source.url(), "-to", &target.url(), "--json"]);
    run.success();
    assert_eq!(run.json_field("scanned"), 0.0);
    assert_eq!(target.client().dbsize(), 0);
}

#[test]
fn existing_keys_are_replaced_and_target_only_keys_are_kept() {
    let source = Server::start();
    let target = Server::start();
    source.client().ok(&["SET", "shared", "from-source"]);
    let mut dst = target.client();
    dst.ok(&["SET", "shared", "old"]);
    dst.ok(&["SET", "target-only", "stays"]);
    rump(&["-from", &source.url(), "-to", &target.url()]).success();
    assert_eq!(dst.ok(&["GET", "shared"]).as_bulk().unwrap(), "from-source");
    assert_eq!(dst.ok(&["GET", "target-only"]).as_bulk().unwrap(), "stays");
}

#[test]
fn no_replace_keeps_existing_keys_and_counts_them_skipped() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["SET", "shared", "from-source"]);
    src.ok(&["SET", "new", "from-source"]);
    target.client().ok(&["SET", "shared", "old"]);
    let run = rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--no-replace",
        "--json",
    ]);
    run.success();
    run.assert_reconciles();
    assert_eq!(run.json_field("skipped"), 1.0);
    assert_eq!(run.json_field("copied"), 1.0);
    let mut dst = target.client();
    assert_eq!(dst.ok(&["GET", "shared"]).as_bulk().unwrap(), "old");
    assert_eq!(dst.ok(&["GET", "new"]).as_bulk().unwrap(), "from-source");
}

#[test]
fn match_and_type_are_pushed_down_to_scan() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.pipeline(&[
        cmd!("SET", "user:1", "a"),
        cmd!("SET", "user:2", "b"),
        cmd!("HSET", "user:3", "f", "v"),
        cmd!("SET", "order:1", "c"),
    ]);
    rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--match",
        "user:*",
    ])
    .success();
    assert_eq!(
        target.client().keys(),
        vec![b"user:1".to_vec(), b"user:2".to_vec(), b"user:3".to_vec()]
    );

    let target2 = Server::start();
    rump(&[
        "-from",
        &source.url(),
        "-to",
        &target2.url(),
        "--type",
        "hash",
    ])
    .success();
    assert_eq!(target2.client().keys(), vec![b"user:3".to_vec()]);

    let target3 = Server::start();
    rump(&[
        "-from",
        &source.url(),
        "-to",
        &target3.url(),
        "-match=user:*",
        "-type=string",
    ])
    .success();
    assert_eq!(
        target3.client().keys(),
        vec![b"user:1".to_vec(), b"user:2".to_vec()]
    );
}

#[test]
fn databases_are_selected_on_both_ends() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    src.ok(&["SELECT", "3"]);
    src.ok(&["SET", "in-db-3", "x"]);
    rump(&["-from", &source.url_db(3), "-to", &target.url_db(5)]).success();
    let mut dst = target.client();
    assert_eq!(dst.dbsize(), 0, "db 0 untouched");
    dst.ok(&["SELECT", "5"]);
    assert_eq!(dst.keys(), vec![b"in-db-3".to_vec()]);
}

#[test]
fn the_source_is_only_ever_read() {
    let source = Server::start();
    let target = Server::start();
    let mut src = source.client();
    load_every_type(&mut src);
    src.ok(&["SET", "ttl", "v", "EX", "1000"]);
    src.ok(&["CONFIG", "RESETSTAT"]);
    rump(&["-from", &source.url(), "-to", &target.url()]).success();
    let used = src.commands_used();
    // Our own INFO call above is counted too.
    let allowed = [
        "config|resetstat",
        "scan",
        "dump",
        "pexpiretime",
        "pttl",
        "info",
        "dbsize",
        "select",
        "auth",
        "ping",
        // Names rump's connection in CLIENT LIST; no data is touched.
        "client|setname",
    ];
    for cmd in &used {
        assert!(
            allowed.contains(&cmd.as_str()),
            "rump sent {cmd} to the source: {used:?}"
        );
    }
    let sent = |name: &str| used.iter().any(|c| c == name);
    assert!(sent("dump") && sent("scan"), "{used:?}");
}

#[test]
fn unix_socket_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock");
    let sock_text = sock.to_string_lossy().into_owned();
    let source = Server::start_with(Flavor::Redis, &["--unixsocket", &sock_text]);
    let target = Server::start();
    source.client().ok(&["SET", "via", "unix"]);
    rump(&[
        "-from",
        &format!("unix://{sock_text}"),
        "-to",
        &target.url(),
    ])
    .success();
    assert_eq!(
        target.client().ok(&["GET", "via"]).as_bulk().unwrap(),
        "unix"
    );
}

#[test]
fn rate_limit_spreads_keys_over_time() {
    let source = Server::start();
    let target = Server::start();
    source.client().ok(&["DEBUG", "POPULATE", "300"]);
    let start = std::time::Instant::now();
    rump(&[
        "-from",
        &source.url(),
        "-to",
        &target.url(),
        "--rate",
        "200",
    ])
    .success();
    // 300 keys at 200 keys/s cannot take less than about 1.5 s (a 1% burst allowed).
    assert!(
        start.elapsed().as_secs_f64() >= 1.4,
        "{:?}",
        start.elapsed()
    );
    assert_eq!(target.client().dbsize(), 300);
}

#[test]
fn redis_7_to_valkey_8_copies_everything() {
    let source = Server::start();
    let target = Server::start_with(Flavor::Valkey, &[]);
    let mut src = source.client();
    let keys = load_every_type(&mut src);
    src.ok(&["SET", "ttl", "v", "PX", "500000"]);
    rump(&["-from", &source.url(), "-to", &target.url()]).success();
    let mut dst = target.client();
    assert_eq!(dst.dbsize() as usize, keys.len() + 1);
    // Values compare through a read both servers answer the same way.
    assert_eq!(
        dst.ok(&["LRANGE", "list", "0", "-1"]),
        src.ok(&["LRANGE", "list", "0", "-1"])
    );
    assert_eq!(dst.ok(&["HGETALL", "hash"]), src.ok(&["HGETALL", "hash"]));
    assert_eq!(dst.pexpiretime(b"ttl"), src.pexpiretime(b"ttl"));
}
