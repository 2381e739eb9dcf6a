//! Dump-file throughput (issue 4): how fast `rump` writes and restores dump
//! files in both formats, next to a server → server copy of the same data.
//!
//! Per dataset, on a throwaway source and target `redis-server` (the e2e
//! harness's `Lab`), each step is one run of the release `rump` binary, timed
//! wall-clock from spawn to exit (start-up and the final fsync included):
//! server → server, server → file and file → server in the native format,
//! then the same two in the legacy format. Every restore is checked (DBSIZE
//! and `copied`); the target is flushed, untimed, before each one. Dump files
//! are written beside the servers' directories and removed with them.
//!
//! `nice cargo bench --bench dump` runs it; `-- --help` lists the options.

#[allow(dead_code)] // shared with benches/e2e.rs, which uses more of it
#[path = "e2e/redis.rs"]
mod redis;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use redis::{Conn, Lab, Res};
use rump::progress::group;

const HELP: &str = "\
dump: dump-file throughput of rump (see BENCHMARKS.md, \"Dump files\")

usage: nice cargo bench --bench dump -- [OPTIONS]

options:
  --keys N             small keys in the first dataset (default 1000000)
  --big N              4 MiB values in the second dataset (default 100)
  --dataset LIST       small, big or both (default small,big)
  --redis-server PATH  server binary (default $REDIS_SERVER or redis-server)
  -h, --help           this text
";

/// Size of each value in the `big` dataset.
const BIG_VALUE: usize = 4 << 20;

struct Config {
    keys: u64,
    big: u64,
    datasets: Vec<String>,
    redis_server: PathBuf,
}

fn parse_args(args: Vec<String>) -> Res<Option<Config>> {
    let mut config = Config {
        keys: 1_000_000,
        big: 100,
        datasets: vec!["small".into(), "big".into()],
        redis_server: std::env::var_os("REDIS_SERVER")
            .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: {v:?} is not a count"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            "--keys" => config.keys = number(value()?)?,
            "--big" => config.big = number(value()?)?,
            "--dataset" => {
                config.datasets = value()?.split(',').map(str::to_owned).collect();
                if let Some(bad) = config
                    .datasets
                    .iter()
                    .find(|d| !matches!(d.as_str(), "small" | "big"))
                {
                    return Err(format!("unknown dataset {bad:?} (choices: small, big)"));
                }
            }
            "--redis-server" => config.redis_server = PathBuf::from(value()?),
            _ => return Err(format!("unknown option {arg:?}")),
        }
    }
    Ok(Some(config))
}

fn main() {
    let config = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(e) => {
            eprintln!("dump: {e} (see --help)");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&config) {
        eprintln!("dump: {e}");
        std::process::exit(1);
    }
}

/// One timed step of the table.
struct Row {
    dataset: String,
    step: &'static str,
    keys: u64,
    bytes: u64,
    seconds: f64,
}

fn run(config: &Config) -> Res<()> {
    let rump = PathBuf::from(env!("CARGO_BIN_EXE_rump"));
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    for dataset in &config.datasets {
        let lab = Lab::start(&config.redis_server)?;
        let mut src = lab.source.conn()?;
        let name = match dataset.as_str() {
            "small" => {
                let n = config.keys.to_string();
                src.call_ok(&[b"DEBUG", b"POPULATE", n.as_bytes(), b"key", b"16"])?;
                format!("{} × 16 B", group(config.keys))
            }
            _ => {
                load_big(&mut src, config.big)?;
                format!("{} × 4 MiB", config.big)
            }
        };
        let keys = src.dbsize()?;
        eprintln!("dump: {name}: {keys} keys loaded");
        let dir = lab_dir(&lab)?;
        let mut tgt = lab.target.conn()?;
        let (src_url, tgt_url) = (lab.source.url(), lab.target.url());
        let native = dir.join("native.rump");
        let legacy = dir.join("legacy.rump");
        let (native_s, legacy_s) = (text(&native), text(&legacy));

        type Step<'a> = (&'static str, Vec<&'a str>, bool);
        let steps: [Step<'_>; 5] = [
            (
                "server → server",
                vec!["-from", &src_url, "-to", &tgt_url],
                true,
            ),
            (
                "server → file (native)",
                vec!["-from", &src_url, "-to", &native_s],
                false,
            ),
            (
                "file → server (native)",
                vec!["-from", &native_s, "-to", &tgt_url],
                true,
            ),
            (
                "server → file (legacy)",
                vec!["-from", &src_url, "-to", &legacy_s, "--format", "legacy"],
                false,
            ),
            (
                "file → server (legacy)",
                vec!["-from", &legacy_s, "-to", &tgt_url],
                true,
            ),
        ];
        for (step, args, restores) in steps {
            if restores {
                tgt.flushall()?;
            }
            let (seconds, copied, bytes) = time_rump(&rump, &args)?;
            if copied != keys {
                return Err(format!("{step}: copied {copied} of {keys} keys"));
            }
            if restores && tgt.dbsize()? != keys {
                return Err(format!(
                    "{step}: the target holds {} keys, not {keys}",
                    tgt.dbsize()?
                ));
            }
            eprintln!("dump: {name}: {step}: {seconds:.2} s");
            rows.push(Row {
                dataset: name.clone(),
                step,
                keys,
                bytes,
                seconds,
            });
            if step == "file → server (native)" {
                sizes.push((name.clone(), "native", file_size(&native)?));
                // Keep one dump on disk at a time.
                std::fs::remove_file(&native).map_err(|e| format!("remove {native_s}: {e}"))?;
            }
        }
        sizes.push((name.clone(), "legacy", file_size(&legacy)?));
    }
    print_tables(&rows, &sizes);
    Ok(())
}

/// `big` incompressible 4 MiB strings (LZF inside DUMP cannot shrink them,
/// so the bytes measured are the bytes moved).
fn load_big(conn: &mut Conn, count: u64) -> Res<()> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut value = vec![0u8; BIG_VALUE];
    for i in 0..count {
        for chunk in value.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        conn.call_ok(&[b"SET", format!("big:{i}").as_bytes(), &value])?;
    }
    Ok(())
}

/// The lab's temp dir: the parent of the servers' own directories.
fn lab_dir(lab: &Lab) -> Res<PathBuf> {
    let mut conn = lab.source.conn()?;
    let dir = conn.call_ok(&[b"CONFIG", b"GET", b"dir"])?;
    let dir = dir
        .into_array()
        .ok()
        .and_then(|parts| parts.into_iter().nth(1))
        .and_then(|d| d.as_bulk().map(|b| String::from_utf8_lossy(b).into_owned()))
        .ok_or("CONFIG GET dir: unexpected reply")?;
    Path::new(&dir)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{dir} has no parent"))
}

/// Runs `rump ARGS -silent --json`; wall seconds, `copied` and `bytes`.
fn time_rump(rump: &Path, args: &[&str]) -> Res<(f64, u64, u64)> {
    let start = Instant::now();
    let out = Command::new(rump)
        .args(args)
        .args(["-silent", "--json"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rump.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "rump {} exited with {}: {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stdout
        ));
    }
    let field = |name: &str| -> Res<u64> {
        let needle = format!("\"{name}\":");
        let at = stdout
            .find(&needle)
            .ok_or_else(|| format!("no {name} in {stdout}"))?
            + needle.len();
        stdout[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .map_err(|_| format!("{name} is not a count in {stdout}"))
    };
    Ok((seconds, field("copied")?, field("bytes")?))
}

fn file_size(path: &Path) -> Res<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_tables(rows: &[Row], sizes: &[(String, &str, u64)]) {
    println!("| dataset | step | keys | seconds | keys/s | MiB/s |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {:.1} |",
            r.dataset,
            r.step,
            group(r.keys),
            r.seconds,
            group((r.keys as f64 / r.seconds) as u64),
            mib(r.bytes) / r.seconds
        );
    }
    println!();
    println!("| dataset | format | dump file size |");
    println!("| --- | --- | ---: |");
    for (dataset, format, size) in sizes {
        println!("| {dataset} | {format} | {:.1} MiB |", mib(*size));
    }
}
