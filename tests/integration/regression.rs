//! One test per fixed bug, named `r<issue>_…`.

use crate::util::{rump, Server};

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
    let bytes = std::fs::read(&whole).unwrap();
    // Everything but the 13-byte end marker: every block is intact.
    std::fs::write(&cut, &bytes[..bytes.len() - 13]).unwrap();

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
