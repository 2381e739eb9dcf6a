//! Prints what each DUMP payload file given decodes to (type byte, RDB
//! version, value), for looking at fixtures or a payload a server refused:
//! `cargo run -p rdb --example show -- FILE...`.

fn main() -> std::process::ExitCode {
    let mut status = std::process::ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        let decoded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|data| rdb::decode(&data).map_err(|e| e.to_string()));
        match decoded {
            Ok(d) => println!(
                "{path}: type {} RDB {}: {:?}",
                d.type_byte, d.version, d.value
            ),
            Err(e) => {
                eprintln!("{path}: {e}");
                status = std::process::ExitCode::FAILURE;
            }
        }
    }
    status
}
