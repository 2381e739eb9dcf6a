//! The `rump` command: parses the command line, hands the run to
//! [`rump::app::run`], prints what happened and maps it to the exit status
//! (0 done, 1 failed, 2 usage, 130/143 interrupted). Every error and failure
//! it prints goes through [`rump::secrets::redact`] first.
// Tests may unwrap; the tool itself may not (STYLE rule 7).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use rump::cli::{Args, HELP};
use rump::config::{Config, Verify};
use rump::error::Error;
use rump::progress::{group, Reporter};
use rump::secrets::{self, redact};

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rump: {}", redact(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run() -> Result<u8, Error> {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Before anything can fail and print: even a usage error is masked.
    secrets::register_command_line(&argv);
    let args = Args::parse_from(argv)?;
    if args.help {
        print!("{HELP}");
        return Ok(0);
    }
    if args.version {
        println!("rump {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    let config = Config::from_args(args, |var| std::env::var(var).ok())?;
    if config.dry_run {
        return Ok(dry_run(&config));
    }
    let mut reporter = Reporter::new(config.silent);
    let mut outcome = rump::app::run(&config, &mut reporter);
    // A server may echo a password inside its error (a renamed AUTH does).
    if let Some(error) = &mut outcome.summary.error {
        *error = redact(error).into_owned();
    }
    let summary = &outcome.summary;

    let mut err = std::io::stderr().lock();
    for failure in &outcome.failures {
        say(&mut err, failure);
    }
    if summary.failed > outcome.failures.len() as u64 {
        let more = summary.failed - outcome.failures.len() as u64;
        // Lines of rump's own counts are printed as they are: masking a
        // one-digit password there would only garble the numbers.
        let _ = writeln!(err, "rump: … and {} more keys failed", group(more));
    }
    if let Some(e) = &outcome.error {
        // Including a broken pipe on `-to -`: a dump cut short by its reader
        // is an incomplete backup, not a success.
        say(&mut err, &e.to_string());
    } else if summary.failed > 0 && !config.silent {
        let _ = writeln!(
            err,
            "rump: {} keys were refused by the target (see above)",
            group(summary.failed)
        );
    }
    if let Some(report) = &summary.verify {
        // The differences are the result: shown even with -silent.
        for line in report.shown_lines() {
            say(&mut err, &line);
        }
    }
    if !config.silent && (outcome.started || outcome.signal.is_some()) {
        if config.verify != Verify::Only {
            let _ = writeln!(err, "{}", summary.line());
        }
        if let Some(report) = &summary.verify {
            let _ = writeln!(err, "{}", report.line());
        }
    }
    drop(err);
    if config.json {
        println!("{}", summary.json());
    }
    Ok(match (&outcome.signal, &outcome.error) {
        // A signal is how a live sync is meant to end.
        (Some(_), None) if config.live && summary.failed == 0 => 0,
        (Some(sig), _) => 128 + *sig as u8,
        (None, Some(e)) => e.exit_code(),
        (None, None) if summary.failed > 0 => 1,
        // Differences found by a verify.
        (None, None) if summary.verify.as_ref().is_some_and(|r| r.differing() > 0) => 1,
        (None, None) => 0,
    })
}

/// Runs `--dry-run` and prints its findings on stdout (as JSON with
/// `--json`); the exit status is 1 when a check failed.
fn dry_run(config: &Config) -> u8 {
    let checks = rump::dryrun::run(config);
    let mut out = std::io::stdout().lock();
    if config.json {
        let _ = writeln!(out, "{}", redact(&checks.json()));
    } else {
        for line in checks.lines() {
            let _ = writeln!(out, "{}", redact(&line));
        }
        let _ = writeln!(out, "{}", checks.verdict());
    }
    checks.exit_code()
}

/// Prints one `rump: …` line on stderr, secrets masked; a closed stderr is
/// nothing to report.
fn say(err: &mut impl Write, line: &str) {
    let _ = writeln!(err, "rump: {}", redact(line));
}
