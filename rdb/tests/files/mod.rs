//! The committed fixtures: `tests/fixtures/<server>/<key>.dump`, the DUMP
//! payloads `scripts/rdb-fixtures.sh` captured from each real server.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;

/// Every fixture of the server directory `server`: key → payload.
pub(crate) fn fixtures(server: &str) -> BTreeMap<String, Bytes> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(server);
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("fixture entry").path();
        if path.extension().is_some_and(|e| e == "dump") {
            let key = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            let payload =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(key, Bytes::from(payload));
        }
    }
    out
}
