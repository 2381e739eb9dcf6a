//! The `rump` command: parses the command line, hands the run to
//! [`rump::app::run`], prints what happened and maps it to the exit status
//! (0 done, 1 failed, 2 usage, 130/143 interrupted).
// Tests may unwrap; the tool itself may not (STYLE rule 7).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::io::Write;
use std::process::ExitCode;

use rump::cli::{Args, HELP};
use rump::config::Config;
use rump::error::Error;
use rump::progress::{group, Reporter};

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rump: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run() -> Result<u8, Error> {
    let args = Args::parse()?;
    if args.help {
        print!("{HELP}");
        return Ok(0);
    }
    if args.version {
        println!("rump {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let config = Config::from_args(args, |var| std::env::var(var).ok())?;
    let mut reporter = Reporter::new(config.silent);
    let outcome = rump::app::run(&config, &mut reporter);
    let summary = &outcome.summary;

    let mut err = std::io::stderr().lock();
    for failure in &outcome.failures {
        let _ = writeln!(err, "rump: {failure}");
    }
    if summary.failed > outcome.failures.len() as u64 {
        let more = summary.failed - outcome.failures.len() as u64;
        let _ = writeln!(err, "rump: … and {} more keys failed", group(more));
    }
    if let Some(e) = &outcome.error {
        // Including a broken pipe on `-to -`: a dump cut short by its reader
        // is an incomplete backup, not a success.
        let _ = writeln!(err, "rump: {e}");
    } else if summary.failed > 0 && !config.silent {
        let _ = writeln!(
            err,
            "rump: {} keys were refused by the target (see above)",
            group(summary.failed)
        );
    }
    let started = !matches!(
        &outcome.error,
        Some(Error::Usage(_)) | Some(Error::Connect { .. }) | Some(Error::Auth { .. })
    );
    if !config.silent && (started || outcome.signal.is_some()) {
        let _ = writeln!(err, "{}", summary.line());
    }
    drop(err);
    if config.json {
        println!("{}", summary.json());
    }
    Ok(match (&outcome.signal, &outcome.error) {
        (Some(sig), _) => 128 + *sig as u8,
        (None, Some(e)) => e.exit_code(),
        (None, None) if summary.failed > 0 => 1,
        (None, None) => 0,
    })
}
