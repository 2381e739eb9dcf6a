//! The command line: argv to [`Args`], one flag at a time, no I/O.
//!
//! Every long option is accepted with one dash or two, and as `-name=value` or
//! `--name=value`, because the original Go rump (Go `flag` style) is spelled
//! `rump -from … -to … -silent` in its users' scripts. Cross-flag rules and URI
//! parsing live in `config.rs`.

use std::ffi::OsString;

use crate::dump::Format;
use crate::error::Error;

/// The help text (`-h`, `--help`).
pub const HELP: &str = "\
rump: copy a Redis database between live servers with SCAN, DUMP and RESTORE

USAGE:
    rump -from SOURCE -to TARGET [OPTIONS]

ENDPOINTS (SOURCE and TARGET):
    redis://[[user]:password@]host[:port][/db]   plain TCP (port 6379, db 0 by default)
    unix:///path/to/redis.sock[?db=N]            Unix socket
    rediss://...                                 TLS (not available in this build yet)
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
    --type TYPE              only keys of this type: string, list, set, zset, hash, stream, ...
    --scan-count N           SCAN COUNT hint (default 1000)
    --pipeline N             most commands in flight on one connection (default 4096)
    --rate N                 at most N keys per second, evenly spread
    --json                   print the final summary as one JSON object on stdout
    --format native|legacy   dump-file format to write (default native)
    --tls-ca FILE, --tls-cert FILE, --tls-key FILE, --tls-insecure
                             TLS settings for rediss:// endpoints (not available yet)
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
    "format",
    "tls-ca",
    "tls-cert",
    "tls-key",
];

/// Long options without a value.
const FLAG_OPTIONS: &[&str] = &[
    "silent",
    "ttl",
    "no-ttl",
    "no-replace",
    "json",
    "tls-insecure",
    "help",
    "version",
];

/// The command line as given: each flag parsed on its own, nothing resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub from: Option<String>,
    pub to: Option<String>,
    pub silent: bool,
    pub ttl: bool,
    pub no_ttl: bool,
    pub no_replace: bool,
    pub match_pattern: Option<Vec<u8>>,
    pub key_type: Option<String>,
    pub scan_count: Option<u32>,
    pub pipeline: Option<u32>,
    pub rate: Option<u64>,
    pub json: bool,
    pub format: Option<Format>,
    pub tls_ca: Option<OsString>,
    pub tls_cert: Option<OsString>,
    pub tls_key: Option<OsString>,
    pub tls_insecure: bool,
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
            Long("match") => {
                use std::os::unix::ffi::OsStringExt;
                args_out.match_pattern = Some(parser.value()?.into_vec());
            }
            Long("type") => args_out.key_type = Some(parser.value()?.string()?),
            Long("scan-count") => args_out.scan_count = Some(positive(parser.value()?.parse()?)?),
            Long("pipeline") => args_out.pipeline = Some(positive(parser.value()?.parse()?)?),
            Long("rate") => args_out.rate = Some(positive(parser.value()?.parse()?)?),
            Long("json") => args_out.json = true,
            Long("format") => args_out.format = Some(parser.value()?.parse()?),
            Long("tls-ca") => args_out.tls_ca = Some(parser.value()?),
            Long("tls-cert") => args_out.tls_cert = Some(parser.value()?),
            Long("tls-key") => args_out.tls_key = Some(parser.value()?),
            Long("tls-insecure") => args_out.tls_insecure = true,
            Short('h') | Long("help") => args_out.help = true,
            Short('V') | Long("version") => args_out.version = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args_out)
}

fn positive<T: PartialEq + Default>(n: T) -> Result<T, lexopt::Error> {
    if n == T::default() {
        Err("must be greater than 0".into())
    } else {
        Ok(n)
    }
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
    fn flags() {
        let a = parse_ok(&[
            "-silent",
            "-ttl",
            "--no-ttl",
            "--no-replace",
            "--json",
            "-tls-insecure",
        ]);
        assert!(a.silent && a.ttl && a.no_ttl && a.no_replace && a.json && a.tls_insecure);
        assert!(parse_ok(&["-h"]).help);
        assert!(parse_ok(&["-help"]).help);
        assert!(parse_ok(&["-V"]).version);
        assert!(parse_ok(&["--version"]).version);
    }

    #[test]
    fn numbers_must_be_positive_integers() {
        assert_eq!(parse_ok(&["--pipeline", "64"]).pipeline, Some(64));
        assert_eq!(parse_ok(&["-rate=500"]).rate, Some(500));
        assert!(parse_err(&["--pipeline", "0"]).contains("greater than 0"));
        assert!(parse_err(&["--scan-count", "ten"]).contains("ten"));
        assert!(parse_err(&["--rate", "-5"]).contains("-5"));
    }

    #[test]
    fn options_with_values() {
        let a = parse_ok(&[
            "--match",
            "user:*",
            "--type",
            "hash",
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
        assert_eq!(a.format, Some(Format::Legacy));
        assert_eq!(a.tls_ca, Some("ca.pem".into()));
        assert_eq!(a.tls_cert, Some("c.pem".into()));
        assert_eq!(a.tls_key, Some("k.pem".into()));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert!(parse_err(&["--format", "xml"]).contains("native, legacy"));
        assert!(parse_err(&["--bogus"]).contains("--bogus"));
        assert!(parse_err(&["-x"]).contains("-x"));
        assert!(parse_err(&["stray"]).contains("stray"));
        assert!(parse_err(&["--from"]).contains("--from"));
        assert!(matches!(Args::parse_from(["--nope"]), Err(Error::Usage(_))));
    }
}
