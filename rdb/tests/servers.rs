//! The crate's claims checked against the four real servers (Redis 6.2.14,
//! Redis 7.0, Valkey 8.1.8, Valkey 9.1.2; `scripts/install-deps.sh`
//! installs them): which payload versions and type bytes each `RESTORE`
//! accepts ([`rdb::version_accepted`], [`rdb::type_supported`]), that the
//! plain encodings load everywhere, and that every fixture transcoded for
//! every server restores with equal content.
//!
//! The tables these tests print (run with `--nocapture`) are the ones in the
//! crate README.

mod files;
mod server;

use std::collections::BTreeMap;

use bytes::Bytes;
use files::fixtures;
use rdb::{
    decode, encode, fuzzing::projected, rewrite_footer, transcode, type_supported, types,
    version_accepted, EncodeOptions, Transcoded, Value,
};
use server::{Server, VERSIONS};

/// The value with unordered collections sorted, for comparing content.
fn normalized(v: Value) -> Value {
    match v {
        Value::Set(mut m) => {
            m.sort();
            Value::Set(m)
        }
        Value::Hash(mut f) => {
            f.sort_by(|a, b| a.field.cmp(&b.field));
            Value::Hash(f)
        }
        Value::SortedSet(mut m) => {
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Value::SortedSet(m)
        }
        other => other,
    }
}

fn string(s: &str) -> Value {
    Value::String(Bytes::copy_from_slice(s.as_bytes()))
}

/// Versions to try in a footer: every one a server of either line writes,
/// and the edges of the ranges between.
const FOOTER_VERSIONS: [u16; 12] = [6, 7, 8, 9, 10, 11, 12, 13, 79, 80, 81, 200];

#[test]
fn restore_accepts_the_versions_version_accepted_says() {
    let mut table = String::from("footer version:");
    for v in FOOTER_VERSIONS {
        table += &format!(" {v}");
    }
    for version in VERSIONS {
        let server = Server::start(version);
        let mut c = server.client();
        table += &format!("\n{:>10} ({:>2}):", version.name, version.rdb);
        for v in FOOTER_VERSIONS {
            let payload = encode(&string("x"), v).expect("a string encodes for any version");
            let accepted = c.restore(b"k", &payload).is_ok();
            table += if accepted { " yes" } else { " no" };
            assert_eq!(
                accepted,
                version_accepted(version.rdb, v),
                "{} and a version-{v} payload",
                version.name
            );
        }
    }
    eprintln!("{table}");
}

/// One payload per type byte: from the newest fixture server that writes
/// it, encoded by this crate, or built by hand for the old encodings no
/// server here writes.
fn payload_per_type() -> BTreeMap<u8, Vec<u8>> {
    let mut out = BTreeMap::new();
    for version in VERSIONS.iter().rev() {
        for payload in fixtures(version.name).into_values() {
            out.entry(payload[0]).or_insert(payload.to_vec());
        }
    }
    let list = Value::List(vec![Bytes::from_static(b"a"), Bytes::from_static(b"1")]);
    out.insert(types::LIST, encode(&list, 9).expect("list"));
    let zset = Value::SortedSet(vec![(Bytes::from_static(b"m"), 1.5)]);
    out.insert(types::ZSET, encode(&zset, 7).expect("text-score zset"));
    let ttl = Value::Hash(vec![rdb::HashField {
        field: Bytes::from_static(b"f"),
        value: Bytes::from_static(b"v"),
        expires_ms: Some(4_102_444_800_000),
    }]);
    out.insert(
        types::HASH_METADATA,
        encode(&ttl, 12).expect("Redis field TTLs"),
    );
    // A zipmap {foo: bar, hello: world}, the example of Redis' zipmap.c.
    let zipmap = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
    out.insert(types::HASH_ZIPMAP, legacy_blob(types::HASH_ZIPMAP, zipmap));
    // A ziplist of "2" and "5", the example of Redis' ziplist.c.
    let ziplist = [
        0x0f, 0, 0, 0, 0x0c, 0, 0, 0, 2, 0, 0x00, 0xf3, 0x02, 0xf6, 0xff,
    ];
    out.insert(
        types::LIST_ZIPLIST,
        legacy_blob(types::LIST_ZIPLIST, &ziplist),
    );
    out
}

/// A payload of `type_byte` holding one encoded blob, at RDB version 6.
fn legacy_blob(type_byte: u8, blob: &[u8]) -> Vec<u8> {
    let mut p = vec![type_byte, blob.len() as u8];
    p.extend_from_slice(blob);
    p.extend_from_slice(&6u16.to_le_bytes());
    let crc = rdb::crc64::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn restore_accepts_the_types_type_supported_says() {
    let payloads = payload_per_type();
    let mut table = String::from("type byte:");
    for t in payloads.keys() {
        table += &format!(" {t}");
    }
    for version in VERSIONS {
        let server = Server::start(version);
        let mut c = server.client();
        table += &format!("\n{:>10}:", version.name);
        for (&t, payload) in &payloads {
            // Same bytes, this server's own version: only the type decides.
            let payload = rewrite_footer(payload, version.rdb).expect("valid payload");
            let result = c.restore(b"k", &payload);
            table += if result.is_ok() { " yes" } else { " no" };
            assert_eq!(
                result.is_ok(),
                type_supported(t, version.rdb),
                "{}: type {t}: {result:?}",
                version.name
            );
            if result.is_ok() {
                // Loaded as the value the crate decodes it to.
                let back = decode(&c.dump(b"k")).expect("server's DUMP decodes");
                let want = decode(&payload).expect("decodes").value;
                assert_eq!(
                    normalized(back.value),
                    normalized(projected(&want, version.rdb, false)),
                    "{}: type {t}",
                    version.name
                );
            }
        }
    }
    eprintln!("{table}");
}

/// Every fixture value, encoded for each server in the plain encodings
/// (whether or not it needed it), restores there with the same content:
/// list type 1, set 2, hash 4, zset 5, and each server's stream type.
#[test]
fn plain_encodings_restore_on_every_server() {
    for version in VERSIONS {
        let server = Server::start(version);
        let mut c = server.client();
        for source in VERSIONS {
            for (key, payload) in fixtures(source.name) {
                let value = decode(&payload).expect("decodes").value;
                let options = EncodeOptions {
                    drop_field_ttl: true,
                };
                let encoded = rdb::encode_with(&value, version.rdb, &options).expect("encodes");
                let what = format!("{}/{key} on {}", source.name, version.name);
                c.restore(key.as_bytes(), &encoded)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let back = decode(&c.dump(key.as_bytes())).expect("DUMP decodes");
                assert_eq!(
                    normalized(back.value),
                    normalized(projected(&value, version.rdb, true)),
                    "{what}"
                );
            }
        }
    }
}

/// The integration path: every fixture of every server, transcoded for
/// every server (down: footer rewrite or re-encode; same or up: passed
/// through as the control), restores and reads back equal, HyperLogLogs
/// count the same.
#[test]
fn transcoded_fixtures_restore_with_equal_content() {
    let mut counts = BTreeMap::new();
    for target in VERSIONS {
        let server = Server::start(target);
        let mut c = server.client();
        for source in VERSIONS {
            for (key, payload) in fixtures(source.name) {
                let what = format!("{}/{key} → {}", source.name, target.name);
                let options = EncodeOptions {
                    drop_field_ttl: true,
                };
                let out = transcode(&payload, target.rdb, &options)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let (path, bytes) = match out {
                    Transcoded::Unchanged => ("unchanged", payload.to_vec()),
                    Transcoded::Footer(p) => ("footer", p),
                    Transcoded::Reencoded(p) => ("re-encoded", p),
                };
                *counts.entry(path).or_insert(0) += 1;
                c.restore(key.as_bytes(), &bytes)
                    .unwrap_or_else(|e| panic!("{what} ({path}): {e}"));
                let back = decode(&c.dump(key.as_bytes())).expect("DUMP decodes").value;
                let source_value = decode(&payload).expect("decodes").value;
                // What both servers' layouts hold (pass-through upward: the
                // newer target fills in what the older source lacked).
                let common = source.rdb.min(target.rdb);
                assert_eq!(
                    normalized(projected(&back, common, true)),
                    normalized(projected(&source_value, common, true)),
                    "{what} ({path})"
                );
                if key == "hll_sparse" {
                    assert_eq!(c.int(&[b"PFCOUNT", b"hll_sparse"]), 5, "{what}");
                }
                if key == "hll_dense" {
                    let n = c.int(&[b"PFCOUNT", b"hll_dense"]);
                    assert!((4900..=5100).contains(&n), "{what}: PFCOUNT {n}");
                }
            }
        }
    }
    eprintln!("paths taken: {counts:?}");
    for path in ["unchanged", "footer", "re-encoded"] {
        assert!(
            counts.get(path).is_some_and(|&n| n > 0),
            "no payload took {path}"
        );
    }
}

/// Field TTLs survive a re-encode onto the one server here that has them.
#[test]
fn field_ttls_restore_on_valkey_9() {
    let valkey9 = VERSIONS[3];
    let server = Server::start(valkey9);
    let mut c = server.client();
    for (key, field) in [("hash_ttl_small", "a"), ("hash_ttl_large", "f0")] {
        let payload = &fixtures(valkey9.name)[key];
        let value = decode(payload).expect("decodes").value;
        let encoded = encode(&value, valkey9.rdb).expect("Valkey 9 holds field TTLs");
        c.restore(key.as_bytes(), &encoded).expect("restores");
        let back = decode(&c.dump(key.as_bytes())).expect("decodes").value;
        assert_eq!(normalized(back), normalized(value), "{key}");
        let ttl = c.cmd(&[
            b"HPEXPIRETIME",
            key.as_bytes(),
            b"FIELDS",
            b"1",
            field.as_bytes(),
        ]);
        assert!(
            format!("{ttl:?}").contains("4102444800000"),
            "{key}: HPEXPIRETIME {field} = {ttl:?}"
        );
    }
}

/// `rdb_version_for` maps each server's `INFO server` version to the RDB
/// version its own `DUMP` footers carry.
#[test]
fn info_versions_map_to_the_rdb_version_each_server_writes() {
    for version in VERSIONS {
        let server = Server::start(version);
        let mut c = server.client();
        let info = match c.cmd(&[b"INFO", b"server"]) {
            Ok(resp::Frame::Bulk(b)) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO replied {other:?}"),
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let (line, v) = match field("valkey_version") {
            Some(v) => (rdb::ServerLine::Valkey, v),
            None => (
                rdb::ServerLine::Redis,
                field("redis_version").expect("redis_version"),
            ),
        };
        let mut parts = v
            .split('.')
            .map(|p| p.parse::<u32>().expect("numeric version"));
        let (major, minor) = (parts.next().expect("major"), parts.next().expect("minor"));
        assert!(c.cmd(&[b"SET", b"k", b"v"]).is_ok());
        let footer = rdb::payload_version(&c.dump(b"k")).expect("footer");
        assert_eq!(footer, version.rdb, "{}", version.name);
        assert_eq!(
            rdb::rdb_version_for(line, major, minor),
            Some(footer),
            "{} {v}",
            version.name
        );
    }
}
