//! The command line: argv to [`Args`], one flag at a time, no I/O.
//!
//! Every long option is accepted with one dash or two, and as `-name=value` or
//! `--name=value`, because the original Go rump (Go `flag` style) is spelled
//! `rump -from … -to … -silent` in its users' scripts. Cross-flag rules and URI
//! parsing live in `config.rs`.

use std::ffi::OsString;
use std::num::IntErrorKind;
use std::path::PathBuf;

use crate::cluster::slots::{parse_partition, SlotSet};
use crate::config::ReadFrom;
use crate::config::{timeout_from_secs, MAX_PIPELINE, MAX_SCAN_COUNT};
use crate::dump::Format;
use crate::error::Error;
use crate::net::tls::TlsOptions;
use crate::progress::group;

/// The help text (`-h`, `--help`).
pub const HELP: &str = "\
rump: copy a Redis database between live servers with SCAN, DUMP and RESTORE

USAGE:
    rump -from SOURCE -to TARGET [OPTIONS]

ENDPOINTS (SOURCE and TARGET):
    redis://[[user]:password@]host[:port][/db]   plain TCP (port 6379, db 0 by default)
    unix:///path/to/redis.sock[?db=N]            Unix socket
    rediss://[[user]:password@]host[:port][/db]  the same over TLS (1.2 or 1.3)
    PATH                                         a dump file; - is stdin (SOURCE) or stdout (TARGET)
  User and password are percent-decoded. The password may instead come from
  RUMP_FROM_PASSWORD / RUMP_TO_PASSWORD so it never appears on a command line.

OPTIONS:
    -from, --from SOURCE     where to read keys from
    -to, --to TARGET         where to write them
    -silent, --silent        no progress and no summary on stderr (errors still)
    -ttl, --ttl              accepted for compatibility: TTLs are copied anyway
    --no-ttl                 do not copy TTLs (restored keys never expire)
    --no-replace             keep keys that already exist on the target (counted as skipped)
    --match PATTERN          only keys matching the glob (SCAN MATCH)
    --type TYPE              only keys of this type: string, list, set, zset, hash, stream,
                             or a module's 9-character type name (ReJSON-RL, ...)
    --scan-count N           SCAN COUNT hint (default: sized by the round trip, 1000 to 10000;
                             at most 1000000)
    --pipeline N             most commands in flight on one connection (default: sized by the
                             round trip and throughput, from 4096; at most 1000000)
    --rate N                 at most N keys per second, evenly spread
    --timeout SECONDS        how long a silent or lost server is waited for (default 30; 0.5 is fine)
    --checkpoint FILE        record the source's SCAN progress in FILE; resume from it
    --drop-field-ttl         copy hashes with per-field TTLs to a target without them, dropping
                             the field TTLs (otherwise such keys fail, named)
    --live                   after the copy, keep copying every key that changes on the
                             source (keyspace notifications) until SIGINT/SIGTERM
    --live-enable-events     with --live: set notify-keyspace-events for the run, put it back after
    --slots RANGES           only keys whose hash slot is in RANGES, e.g. 0-5460,10923
    --partition I/N          only keys of the I-th (0-based) of N equal slot ranges: N runs
                             with 0/N … N-1/N together copy every key exactly once
    --read-from master|replica
                             on a cluster source, scan the masters (default) or one
                             replica of each shard, sparing the masters
    --json                   print the final summary as one JSON object on stdout
    --format native|legacy   dump-file format to write (default native)
    --verify                 after the copy, compare every copied key on both ends
    --verify-only            compare source and target without copying (writes nothing)
    --dry-run                check both ends, permissions, versions, memory and the
                             expected duration; write nothing
    --tls-ca FILE            trust only the CAs in this PEM bundle (default: the system's roots)
    --tls-cert FILE --tls-key FILE
                             present this client certificate (key in PKCS#8, PKCS#1 or SEC1)
    --tls-server-name NAME   verify NAME (and send it as SNI) instead of the URI's host
    --tls-insecure           do not verify the server's certificate (says so on stderr)
    -h, --help               print this help
    -V, --version            print the version

EXAMPLES:
    rump -from redis://10.0.0.1:6379/0 -to redis://10.0.0.2:6379/0
    RUMP_FROM_PASSWORD=secret rump -from redis://default@src:6379 -to redis://dst:6379 --match 'user:*'
    rump -from redis://src:6379 -to backup.rump
    rump -from backup.rump -to redis://dst:6379
    rump -from redis://src -to - | ssh host rump -from - -to redis://dst

EXIT STATUS:
    0 everything copied; 1 the run failed; 2 usage error; 130/143 interrupted (SIGINT/SIGTERM)
";

/// Long options that take a value: after one of these (without `=`), the next
/// argument is a value even if it starts with a dash.
const VALUE_OPTIONS: &[&str] = &[
    "from",
    "to",
    "match",
    "type",
    "scan-count",
    "pipeline",
    "rate",
    "timeout",
    "checkpoint",
    "slots",
    "partition",
    "read-from",
    "format",
    "tls-ca",
    "tls-cert",
    "tls-key",
    "tls-server-name",
];

/// Long options without a value.
const FLAG_OPTIONS: &[&str] = &[
    "silent",
    "ttl",
    "no-ttl",
    "no-replace",
    "live",
    "live-enable-events",
    "drop-field-ttl",
    "json",
    "tls-insecure",
    "verify",
    "verify-only",
    "dry-run",
    "help",
    "version",
];

/// The command line as given: each flag parsed on its own, nothing resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    pub from: Option<String>,
    pub to: Option<String>,
    pub silent: bool,
    pub ttl: bool,
    pub no_ttl: bool,
    pub no_replace: bool,
    /// `--drop-field-ttl`: copy hashes with field TTLs without them to a
    /// target that has none.
    pub drop_field_ttl: bool,
    /// `--live`: keep following changes after the copy, until a signal.
    pub live: bool,
    /// `--live-enable-events`: set `notify-keyspace-events` for the run.
    pub live_enable_events: bool,
    pub match_pattern: Option<Vec<u8>>,
    pub key_type: Option<String>,
    pub scan_count: Option<u32>,
    pub pipeline: Option<u32>,
    pub rate: Option<u64>,
    /// `--timeout` in seconds, validated by `config::timeout_from_secs`.
    pub timeout: Option<f64>,
    pub checkpoint: Option<PathBuf>,
    /// `--slots RANGES`, parsed.
    pub slots: Option<SlotSet>,
    /// `--partition I/N`, parsed.
    pub partition: Option<(u16, u16)>,
    pub read_from: Option<ReadFrom>,
    pub json: bool,
    pub format: Option<Format>,
    /// `--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-server-name`,
    /// `--tls-insecure`.
    pub tls: TlsOptions,
    /// `--verify`: compare both ends after the copy.
    pub verify: bool,
    /// `--verify-only`: compare both ends instead of copying.
    pub verify_only: bool,
    /// `--dry-run`: check everything, write nothing.
    pub dry_run: bool,
    pub help: bool,
    pub version: bool,
}

impl Args {
    /// Parses the process's own arguments.
    pub fn parse() -> Result<Args, Error> {
        Args::parse_from(std::env::args_os().skip(1))
    }

    /// Parses `args` (without the program name).
    pub fn parse_from<I, S>(args: I) -> Result<Args, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        parse(normalize(args.into_iter().map(Into::into))).map_err(usage)
    }
}

fn usage(e: lexopt::Error) -> Error {
    let text = e.to_string();
    Error::Usage(format!("{text} (see rump --help)"))
}

/// Rewrites `-name` and `-name=value` for every known long option to the
/// `--` form lexopt expects, leaving values and short options alone.
fn normalize(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut expect_value = false;
    for arg in args {
        if expect_value {
            expect_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        let (dashes, body) = if let Some(rest) = text.strip_prefix("--") {
            (2, rest)
        } else if let Some(rest) = text.strip_prefix('-') {
            (1, rest)
        } else {
            out.push(arg);
            continue;
        };
        let (name, has_value) = match body.split_once('=') {
            Some((name, _)) => (name, true),
            None => (body, false),
        };
        let known = VALUE_OPTIONS.contains(&name) || FLAG_OPTIONS.contains(&name);
        if dashes == 1 && known && name.len() > 1 {
            out.push(OsString::from(format!("-{text}")));
        } else {
            out.push(arg.clone());
        }
        if known && !has_value && VALUE_OPTIONS.contains(&name) {
            expect_value = true;
        }
    }
    out
}

fn parse(args: Vec<OsString>) -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;

    let mut args_out = Args::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("from") => args_out.from = Some(parser.value()?.string()?),
            Long("to") => args_out.to = Some(parser.value()?.string()?),
            Long("silent") => args_out.silent = true,
            Long("ttl") => args_out.ttl = true,
            Long("no-ttl") => args_out.no_ttl = true,
            Long("no-replace") => args_out.no_replace = true,
            Long("live") => args_out.live = true,
            Long("drop-field-ttl") => args_out.drop_field_ttl = true,
            Long("live-enable-events") => args_out.live_enable_events = true,
            Long("match") => {
                use std::os::unix::ffi::OsStringExt;
                args_out.match_pattern = Some(parser.value()?.into_vec());
            }
            Long("type") => args_out.key_type = Some(key_type(parser.value()?.string()?)?),
            Long("scan-count") => {
                args_out.scan_count = Some(count("--scan-count", parser.value()?, MAX_SCAN_COUNT)?);
            }
            Long("pipeline") => {
                args_out.pipeline = Some(count("--pipeline", parser.value()?, MAX_PIPELINE)?);
            }
            Long("rate") => args_out.rate = Some(whole("--rate", parser.value()?, u64::MAX)?),
            Long("timeout") => args_out.timeout = Some(seconds("--timeout", parser.value()?)?),
            Long("checkpoint") => {
                let path = parser.value()?;
                if path.is_empty() {
                    return Err("--checkpoint: the file name is empty".into());
                }
                args_out.checkpoint = Some(PathBuf::from(path));
            }
            Long("json") => args_out.json = true,
            Long("slots") => {
                let text = parser.value()?.string()?;
                args_out.slots = Some(SlotSet::parse(&text).map_err(|e| format!("--slots: {e}"))?);
            }
            Long("partition") => {
                let text = parser.value()?.string()?;
                let (i, n) = parse_partition(&text).map_err(|e| format!("--partition: {e}"))?;
                args_out.partition = Some((i, n));
            }
            Long("read-from") => {
                let text = parser.value()?.string()?;
                args_out.read_from = Some(text.parse().map_err(|e| format!("--read-from: {e}"))?);
            }
            Long("format") => {
                let text = parser.value()?.string()?;
                let format = text.parse().map_err(|e| format!("--format: {e}"))?;
                args_out.format = Some(format);
            }
            Long("tls-ca") => args_out.tls.ca = Some(parser.value()?.into()),
            Long("tls-cert") => args_out.tls.cert = Some(parser.value()?.into()),
            Long("tls-key") => args_out.tls.key = Some(parser.value()?.into()),
            Long("tls-server-name") => {
                let name = parser.value()?.string()?;
                if name.is_empty() {
                    return Err("--tls-server-name: the name is empty".into());
                }
                args_out.tls.server_name = Some(name);
            }
            Long("tls-insecure") => args_out.tls.insecure = true,
            Long("verify") => args_out.verify = true,
            Long("verify-only") => args_out.verify_only = true,
            Long("dry-run") => args_out.dry_run = true,
            Short('h') | Long("help") => args_out.help = true,
            Short('V') | Long("version") => args_out.version = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args_out)
}

/// A whole number from 1 to `max` for `flag`; every error names the flag.
fn whole(flag: &str, value: OsString, max: u64) -> Result<u64, lexopt::Error> {
    let Some(text) = value.to_str() else {
        return Err(format!("{flag}: {value:?} is not a whole number").into());
    };
    let too_large = || format!("{flag}: {text} is too large (at most {})", group(max));
    match text.parse::<u64>() {
        Ok(0) => Err(format!("{flag}: must be greater than 0").into()),
        Ok(n) if n > max => Err(too_large().into()),
        Ok(n) => Ok(n),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => Err(too_large().into()),
        Err(_) if text.parse::<i128>().is_ok() => {
            Err(format!("{flag}: must be greater than 0").into())
        }
        Err(_) => Err(format!("{flag}: {text:?} is not a whole number").into()),
    }
}

/// [`whole`] for the options held in a `u32`.
fn count(flag: &str, value: OsString, max: u32) -> Result<u32, lexopt::Error> {
    let n = whole(flag, value, u64::from(max))?;
    u32::try_from(n).map_err(|_| format!("{flag}: {n} is too large").into())
}

/// A number of seconds for `flag` (decimals allowed), in the range
/// `config::timeout_from_secs` accepts.
fn seconds(flag: &str, value: OsString) -> Result<f64, lexopt::Error> {
    let not_seconds = || format!("{flag}: {value:?} is not a number of seconds (as in 30 or 0.5)");
    let secs: f64 = value
        .to_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(not_seconds)?;
    timeout_from_secs(secs).map_err(|e| format!("{flag}: {e}"))?;
    Ok(secs)
}

/// The key types every server knows, as `TYPE` and `SCAN … TYPE` name them.
pub const CORE_TYPES: [&str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

/// Length of every module type name: Redis requires exactly 9 characters
/// (`RedisModule_CreateDataType`), from `A-Z a-z 0-9 - _`.
pub const MODULE_TYPE_NAME_LEN: usize = 9;

/// Names people write for a type that `TYPE` spells otherwise.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("sortedset", "zset"),
    ("sorted_set", "zset"),
    ("sorted-set", "zset"),
    ("str", "string"),
    ("hyperloglog", "string"),
    ("hll", "string"),
    ("json", "ReJSON-RL"),
    ("rejson", "ReJSON-RL"),
];

/// Checks `--type`: a core type (in any case, returned in lowercase) or a
/// module type name; anything else would silently match no key, so it is a
/// usage error, with the closest name when it is a near miss.
fn key_type(text: String) -> Result<String, lexopt::Error> {
    let lower = text.to_ascii_lowercase();
    if CORE_TYPES.contains(&lower.as_str()) {
        return Ok(lower);
    }
    let alias = TYPE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map(|(_, name)| *name);
    let is_module_name = text.len() == MODULE_TYPE_NAME_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if alias.is_none() && is_module_name {
        return Ok(text);
    }
    let hint = match alias.or_else(|| closest(&lower, &CORE_TYPES)) {
        Some(name) => format!(" (did you mean {name}?)"),
        None => String::new(),
    };
    Err(format!(
        "--type: unknown type {text:?}{hint}; the types are {}, or a module's \
         {MODULE_TYPE_NAME_LEN}-character type name such as ReJSON-RL",
        CORE_TYPES.join(", ")
    )
    .into())
}

/// Most edits (insertions, deletions, substitutions) between a word and the
/// choice `closest` suggests for it.
pub const MAX_SUGGESTION_DISTANCE: usize = 2;

/// The choice nearest to `word` when it is a near miss (at most
/// [`MAX_SUGGESTION_DISTANCE`] edits, and fewer edits than `word` has
/// characters, so that `x` is not "close" to `set`); the first on a tie.
pub(crate) fn closest<'a>(word: &str, choices: &[&'a str]) -> Option<&'a str> {
    let limit = MAX_SUGGESTION_DISTANCE.min(word.chars().count().saturating_sub(1));
    choices
        .iter()
        .map(|choice| (edit_distance(word, choice), *choice))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, choice)| choice)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The `-from`/`-to` values of a command line, in every spelling, as text,
/// whether or not the rest of it parses: `secrets` reads their passwords
/// before anything can fail and print.
pub fn raw_endpoints(args: &[OsString]) -> Vec<String> {
    let normalized = normalize(args.iter().cloned());
    let mut out = Vec::new();
    let mut iter = normalized.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--from" || text == "--to" {
            if let Some(value) = iter.next() {
                out.push(value.to_string_lossy().into_owned());
            }
        } else if let Some(value) = text
            .strip_prefix("--from=")
            .or_else(|| text.strip_prefix("--to="))
        {
            out.push(value.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Args {
        match Args::parse_from(args.iter().copied()) {
            Ok(a) => a,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn parse_err(args: &[&str]) -> String {
        match Args::parse_from(args.iter().copied()) {
            Ok(a) => panic!("{args:?} parsed as {a:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn endpoints_in_every_spelling() {
        for args in [
            &["-from", "redis://a", "-to", "redis://b"][..],
            &["--from", "redis://a", "--to", "redis://b"],
            &["-from=redis://a", "-to=redis://b"],
            &["--from=redis://a", "--to=redis://b"],
        ] {
            let a = parse_ok(args);
            assert_eq!(a.from.as_deref(), Some("redis://a"), "{args:?}");
            assert_eq!(a.to.as_deref(), Some("redis://b"), "{args:?}");
        }
    }

    #[test]
    fn a_value_that_starts_with_a_dash_is_a_value() {
        let a = parse_ok(&["-from", "-", "-to", "redis://b"]);
        assert_eq!(a.from.as_deref(), Some("-"));
        let a = parse_ok(&["--match", "-silent"]);
        assert_eq!(a.match_pattern.as_deref(), Some(&b"-silent"[..]));
        assert!(!a.silent);
    }

    #[test]
    fn later_values_override_earlier_ones() {
        let a = parse_ok(&["--scan-count", "10", "-scan-count=20"]);
        assert_eq!(a.scan_count, Some(20));
    }

    #[test]
    fn verify_and_dry_run_in_every_spelling() {
        for flag in ["-verify", "--verify"] {
            assert!(parse_ok(&[flag]).verify, "{flag}");
        }
        for flag in ["-verify-only", "--verify-only"] {
            let a = parse_ok(&[flag]);
            assert!(a.verify_only && !a.verify, "{flag}");
        }
        for flag in ["-dry-run", "--dry-run"] {
            assert!(parse_ok(&[flag]).dry_run, "{flag}");
        }
        assert!(parse_err(&["--verify=yes"]).contains("verify"));
    }

    #[test]
    fn slots_partitions_and_replicas() {
        let a = parse_ok(&[
            "--slots",
            "0-5460,10923",
            "-partition=2/3",
            "--read-from",
            "replica",
        ]);
        assert_eq!(a.slots.unwrap().to_string(), "0-5460,10923");
        assert_eq!(a.partition, Some((2, 3)));
        assert_eq!(a.read_from, Some(ReadFrom::Replica));
        assert!(parse_err(&["--slots", "10-5"]).starts_with("--slots: "));
        assert!(parse_err(&["--partition", "3/3"]).starts_with("--partition: "));
        assert!(parse_err(&["--read-from", "slave"]).contains("master, replica"));
    }

    #[test]
    fn flags() {
        let a = parse_ok(&[
            "-silent",
            "-ttl",
            "--no-ttl",
            "--no-replace",
            "--json",
            "-tls-insecure",
        ]);
        assert!(a.silent && a.ttl && a.no_ttl && a.no_replace && a.json && a.tls.insecure);
        assert!(parse_ok(&["-h"]).help);
        assert!(parse_ok(&["-help"]).help);
        assert!(parse_ok(&["-V"]).version);
        assert!(parse_ok(&["--version"]).version);
    }

    #[test]
    fn numbers_must_be_positive_integers() {
        assert_eq!(parse_ok(&["--pipeline", "64"]).pipeline, Some(64));
        assert_eq!(parse_ok(&["-rate=500"]).rate, Some(500));
        assert_eq!(
            parse_err(&["--pipeline", "0"]),
            "--pipeline: must be greater than 0 (see rump --help)"
        );
        assert_eq!(
            parse_err(&["--scan-count", "ten"]),
            "--scan-count: \"ten\" is not a whole number (see rump --help)"
        );
        assert_eq!(
            parse_err(&["--rate", "-5"]),
            "--rate: must be greater than 0 (see rump --help)"
        );
        assert_eq!(
            parse_err(&["-rate=99999999999999999999999"]),
            "--rate: 99999999999999999999999 is too large (at most 18,446,744,073,709,551,615) (see rump --help)"
        );
        for flag in ["--scan-count", "--pipeline", "--rate", "--timeout"] {
            for bad in ["0", "-1", "x", "1.5x", ""] {
                let e = parse_err(&[flag, bad]);
                assert!(e.starts_with(&format!("{flag}: ")), "{flag} {bad:?}: {e}");
            }
        }
    }

    #[test]
    fn pipeline_and_scan_count_limits() {
        for (flag, max) in [
            ("--pipeline", MAX_PIPELINE),
            ("--scan-count", MAX_SCAN_COUNT),
        ] {
            let a = parse_ok(&[flag, &max.to_string()]);
            assert_eq!(a.pipeline.or(a.scan_count), Some(max), "{flag}");
            let e = parse_err(&[flag, &(max + 1).to_string()]);
            assert_eq!(
                e,
                format!("{flag}: 1000001 is too large (at most 1,000,000) (see rump --help)")
            );
            // Past u32 and past u64: still the limit, not a parse failure.
            assert!(parse_err(&[flag, "4294967296"]).contains("at most 1,000,000"));
            assert!(parse_err(&[flag, "99999999999999999999999"]).contains("at most 1,000,000"));
        }
    }

    #[test]
    fn timeout_in_seconds() {
        assert_eq!(parse_ok(&["--timeout", "0.5"]).timeout, Some(0.5));
        assert_eq!(parse_ok(&["-timeout=30"]).timeout, Some(30.0));
        assert_eq!(parse_ok(&["--timeout", "0.001"]).timeout, Some(0.001));
        assert_eq!(parse_ok(&["--timeout", "86400"]).timeout, Some(86400.0));
        for (bad, why) in [
            ("0", "must be greater than 0"),
            ("-1", "must be greater than 0"),
            ("-0.5", "must be greater than 0"),
            ("0.0009", "must be at least 0.001"),
            ("86400.001", "must be at most 86400 seconds"),
            ("inf", "must be at most 86400 seconds"),
            ("NaN", "NaN is not a number of seconds"),
            ("thirty", "\"thirty\" is not a number of seconds"),
            ("5s", "\"5s\" is not a number of seconds"),
        ] {
            let e = parse_err(&["--timeout", bad]);
            assert!(e.starts_with("--timeout: "), "{bad}: {e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(parse_ok(&[]).timeout, None);
    }

    #[test]
    fn checkpoint_file() {
        use std::os::unix::ffi::OsStringExt;
        let a = parse_ok(&["-checkpoint", "run.ckpt"]);
        assert_eq!(a.checkpoint, Some(PathBuf::from("run.ckpt")));
        let a = parse_ok(&["--checkpoint=-odd-name"]);
        assert_eq!(a.checkpoint, Some(PathBuf::from("-odd-name")));
        // A file name need not be UTF-8.
        let raw = OsString::from_vec(b"ck\xff".to_vec());
        let a = Args::parse_from([OsString::from("--checkpoint"), raw.clone()]).unwrap();
        assert_eq!(a.checkpoint, Some(PathBuf::from(raw)));
        assert!(parse_err(&["--checkpoint", ""]).starts_with("--checkpoint: "));
        assert!(parse_err(&["--checkpoint"]).contains("--checkpoint"));
    }

    #[test]
    fn key_types() {
        for t in CORE_TYPES {
            assert_eq!(parse_ok(&["--type", t]).key_type.as_deref(), Some(t));
        }
        assert_eq!(
            parse_ok(&["--type", "ZSet"]).key_type.as_deref(),
            Some("zset")
        );
        // Module types: exactly MODULE_TYPE_NAME_LEN characters, kept as typed.
        for t in ["ReJSON-RL", "MBbloom--", "TSDB-TYPE", "graphdata"] {
            assert_eq!(parse_ok(&["--type", t]).key_type.as_deref(), Some(t));
        }
        assert!(parse_err(&["--type", "ReJSON-R"]).contains("unknown type"));
        assert!(parse_err(&["--type", "ReJSON-RLX"]).contains("unknown type"));
        assert!(parse_err(&["--type", "ReJSON.RL"]).contains("unknown type"));
        for (bad, near) in [
            ("strng", Some("string")),
            ("lists", Some("list")),
            ("hsah", Some("hash")),
            ("sorted-set", Some("zset")),
            ("sorted_set", Some("zset")),
            ("sortedset", Some("zset")),
            ("SortedSet", Some("zset")),
            ("str", Some("string")),
            ("json", Some("ReJSON-RL")),
            ("x", None),
            ("document", None),
            ("", None),
        ] {
            let e = parse_err(&["--type", bad]);
            assert!(
                e.starts_with(&format!("--type: unknown type {bad:?}")),
                "{e}"
            );
            assert!(e.contains("string, list, set, zset, hash, stream"), "{e}");
            match near {
                Some(n) => assert!(e.contains(&format!("(did you mean {n}?)")), "{e}"),
                None => assert!(!e.contains("did you mean"), "{e}"),
            }
            assert!(!e.contains('\n') && !e.ends_with('.'), "{e}");
        }
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("zset", "zset"), 0);
        assert_eq!(closest("strng", &CORE_TYPES), Some("string"));
        // At the limit and one past it.
        assert_eq!(closest("strxyg", &CORE_TYPES), Some("string"));
        assert_eq!(closest("stxyzg", &CORE_TYPES), None);
        // A word is never close to something it shares nothing with.
        assert_eq!(closest("x", &CORE_TYPES), None);
        assert_eq!(closest("se", &CORE_TYPES), Some("set"));
    }

    #[test]
    fn raw_endpoints_in_every_spelling() {
        let args: Vec<OsString> = [
            "-from", "a", "--to=b", "-to=c", "--from", "d", "-silent", "--to",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(raw_endpoints(&args), ["a", "b", "c", "d"]);
    }

    #[test]
    fn options_with_values() {
        let a = parse_ok(&[
            "--match",
            "user:*",
            "--type",
            "hash",
            "--timeout",
            "2.5",
            "--checkpoint",
            "ck",
            "--format",
            "legacy",
            "--tls-ca",
            "ca.pem",
            "--tls-cert=c.pem",
            "-tls-key",
            "k.pem",
        ]);
        assert_eq!(a.match_pattern.as_deref(), Some(&b"user:*"[..]));
        assert_eq!(a.key_type.as_deref(), Some("hash"));
        assert_eq!(a.timeout, Some(2.5));
        assert_eq!(a.checkpoint, Some(PathBuf::from("ck")));
        assert_eq!(a.format, Some(Format::Legacy));
        assert_eq!(a.tls.ca, Some("ca.pem".into()));
        assert_eq!(a.tls.cert, Some("c.pem".into()));
        assert_eq!(a.tls.key, Some("k.pem".into()));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let e = parse_err(&["--format", "xml"]);
        assert!(
            e.starts_with("--format: ") && e.contains("native, legacy"),
            "{e}"
        );
        assert!(parse_err(&["--bogus"]).contains("--bogus"));
        assert!(parse_err(&["-x"]).contains("-x"));
        assert!(parse_err(&["stray"]).contains("stray"));
        assert!(parse_err(&["--from"]).contains("--from"));
        assert!(matches!(Args::parse_from(["--nope"]), Err(Error::Usage(_))));
    }
}
