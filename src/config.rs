//! Resolved configuration: endpoints parsed from URIs, defaults applied, and
//! rules that involve more than one flag.
//!
//! Nothing here touches the network; a host name is resolved when connecting.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{closest, Args};
use crate::dump::Format;
use crate::error::Error;
use crate::net::tls::TlsClient;
use crate::secrets::Secrets;

/// Most commands in flight where a window is not sized by the round trip
/// (`--verify`'s reads), and the near-server window of the copy: see
/// [`crate::engine::scan::NEAR_PIPELINE`].
pub const DEFAULT_PIPELINE: u32 = crate::engine::scan::NEAR_PIPELINE;
/// Largest `--scan-count`: far past any useful page (Redis itself does about
/// COUNT units of work per call, so a bigger hint only stalls the source).
pub const MAX_SCAN_COUNT: u32 = 1_000_000;
/// Largest `--pipeline`: 250 times the default, about what one connection's
/// buffers can hold before memory, not latency, is the limit.
pub const MAX_PIPELINE: u32 = 1_000_000;
/// Default `--timeout`: how long a silent or lost server is waited for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest `--timeout`: 1 ms; a shorter one would round to no wait at all.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Longest `--timeout`: one day. Longer is a typo, not a plan.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// `--timeout SECONDS` as a duration; the error is a phrase to follow the
/// option's name.
pub fn timeout_from_secs(secs: f64) -> Result<Duration, String> {
    if secs.is_nan() {
        return Err("NaN is not a number of seconds".into());
    }
    if secs <= 0.0 {
        return Err("must be greater than 0".into());
    }
    if secs < MIN_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "must be at least {} (one millisecond)",
            MIN_TIMEOUT.as_secs_f64()
        ));
    }
    if secs > MAX_TIMEOUT.as_secs_f64() {
        return Err(format!(
            "must be at most {} seconds (one day)",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Which nodes of a cluster source are scanned (`--read-from`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// Every master (the default).
    #[default]
    Master,
    /// One replica of each shard, after `READONLY`, to spare the masters.
    Replica,
}

impl std::str::FromStr for ReadFrom {
    type Err = String;

    fn from_str(text: &str) -> Result<ReadFrom, String> {
        match text {
            "master" | "primary" => Ok(ReadFrom::Master),
            "replica" | "replicas" => Ok(ReadFrom::Replica),
            other => Err(format!(
                "unknown choice {other:?} (choices: master, replica)"
            )),
        }
    }
}

/// Whether and when source and target are compared (`--verify`,
/// `--verify-only`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// No comparison (the default).
    #[default]
    Off,
    /// Copy, then compare.
    After,
    /// Compare only; nothing is written.
    Only,
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    /// `host:port` over TCP; `host` may be a name, an IPv4 or an IPv6 address.
    Tcp { host: String, port: u16 },
    /// A Unix domain socket.
    Unix(PathBuf),
}

/// A Redis-compatible server to talk to.
#[derive(Clone)]
pub struct ServerEndpoint {
    pub addr: ServerAddr,
    /// `rediss://`: over TLS, with [`ServerEndpoint::tls_client`].
    pub tls: bool,
    /// The name a TLS connection verifies instead of the host: a cluster
    /// node's is the seed's, since nodes announce IPs their certificate
    /// may not hold. `--tls-server-name` overrides it.
    pub tls_name: Option<String>,
    /// The TLS client a `rediss://` endpoint connects with, set once the
    /// `--tls-*` files are read.
    pub tls_client: Option<Arc<TlsClient>>,
    pub db: u32,
    /// ACL user name; `None` authenticates as `default` (`AUTH password`).
    pub user: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    /// Send `READONLY` after connecting: a cluster replica that is read
    /// (`--read-from replica`). Never set from a URI.
    pub readonly: bool,
}

impl PartialEq for ServerEndpoint {
    /// The same server, reached the same way; the TLS client is shared by
    /// every endpoint of a run, so it does not tell two apart.
    fn eq(&self, other: &ServerEndpoint) -> bool {
        (
            &self.addr,
            self.tls,
            &self.tls_name,
            self.db,
            &self.user,
            &self.password,
            self.readonly,
        ) == (
            &other.addr,
            other.tls,
            &other.tls_name,
            other.db,
            &other.user,
            &other.password,
            other.readonly,
        )
    }
}

impl Eq for ServerEndpoint {}

impl ServerEndpoint {
    /// The host a connection resolves, and a TLS session verifies unless
    /// [`ServerEndpoint::tls_name`] or `--tls-server-name` says otherwise.
    pub fn host(&self) -> Option<&str> {
        match &self.addr {
            ServerAddr::Tcp { host, .. } => Some(host),
            ServerAddr::Unix(_) => None,
        }
    }
}

impl fmt::Debug for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password, not even in debug output.
        write!(f, "ServerEndpoint({self})")
    }
}

impl fmt::Display for ServerEndpoint {
    /// `host:port`, with `/db` when not 0; the form every message uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            ServerAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}")?,
            ServerAddr::Tcp { host, port } => write!(f, "{host}:{port}")?,
            ServerAddr::Unix(path) => write!(f, "{}", path.display())?,
        }
        if self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

/// One end of a migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Server(ServerEndpoint),
    /// A dump file.
    File(PathBuf),
    /// `-`: standard input as a source, standard output as a target.
    Stdio,
}

/// Everything a run needs to know, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: Endpoint,
    pub target: Endpoint,
    pub silent: bool,
    pub json: bool,
    pub copy_ttl: bool,
    pub replace: bool,
    pub match_pattern: Option<Vec<u8>>,
    pub key_type: Option<String>,
    /// `--scan-count`: COUNT of every SCAN; `None`: sized by the round trip.
    pub scan_count: Option<u32>,
    /// `--pipeline`: most commands in flight per connection; `None`: sized
    /// by the round trip and the throughput.
    pub pipeline: Option<u32>,
    pub rate: Option<u64>,
    /// How long a silent or lost server is waited for (`--timeout`).
    pub timeout: Duration,
    /// Where the source's SCAN progress is recorded (`--checkpoint`).
    pub checkpoint: Option<PathBuf>,
    /// Only keys in these hash slots (`--slots`, `--partition`).
    pub slots: Option<crate::cluster::slots::SlotSet>,
    /// Which nodes of a cluster source are scanned.
    pub read_from: ReadFrom,
    pub format: Format,
    /// `--drop-field-ttl`: hashes with field TTLs go to a target without
    /// them as plain hashes.
    pub drop_field_ttl: bool,
    /// `--live`: follow the source's changes until a signal.
    pub live: bool,
    /// `--live-enable-events`: set `notify-keyspace-events` for the run.
    pub live_enable_events: bool,
    /// `--verify` / `--verify-only`.
    pub verify: Verify,
    /// `--dry-run`: check, write nothing.
    pub dry_run: bool,
}

impl Config {
    /// Resolves `args`, taking passwords from `env` (`RUMP_FROM_PASSWORD`,
    /// `RUMP_TO_PASSWORD`) when the URI has none.
    pub fn from_args(args: Args, env: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let from = args
            .from
            .ok_or_else(|| Error::Usage("missing -from SOURCE (see rump --help)".into()))?;
        let to = args
            .to
            .ok_or_else(|| Error::Usage("missing -to TARGET (see rump --help)".into()))?;
        let mut source = parse_endpoint(&from).map_err(|e| Error::Usage(format!("-from: {e}")))?;
        let mut target = parse_endpoint(&to).map_err(|e| Error::Usage(format!("-to: {e}")))?;
        for (endpoint, var) in [
            (&mut source, "RUMP_FROM_PASSWORD"),
            (&mut target, "RUMP_TO_PASSWORD"),
        ] {
            if let Endpoint::Server(server) = endpoint {
                if server.password.is_none() {
                    server.password = env(var).map(String::into_bytes);
                }
            }
        }
        let is_file = |e: &Endpoint| !matches!(e, Endpoint::Server(_));
        if is_file(&source) && is_file(&target) {
            return Err(Error::Usage(
                "-from and -to are both files: one end must be a server (see rump --help)".into(),
            ));
        }
        let is_tls = |e: &Endpoint| matches!(e, Endpoint::Server(ServerEndpoint { tls: true, .. }));
        let uses_tls = is_tls(&source) || is_tls(&target);
        if args.tls.any() && !uses_tls {
            return Err(Error::Usage(
                "--tls-* options apply to rediss:// endpoints, and neither -from nor -to is one"
                    .into(),
            ));
        }
        match (&args.tls.cert, &args.tls.key) {
            (Some(_), None) => {
                return Err(Error::Usage(
                    "--tls-cert needs --tls-key (the client certificate's private key)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(Error::Usage(
                    "--tls-key needs --tls-cert (the client certificate it belongs to)".into(),
                ))
            }
            _ => {}
        }
        if args.format.is_some() && matches!(target, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--format applies only when -to is a dump file".into(),
            ));
        }
        if args.json && target == Endpoint::Stdio {
            return Err(Error::Usage(
                "--json writes to stdout, which -to - already uses for the dump".into(),
            ));
        }
        if args.no_replace && !matches!(target, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--no-replace applies only when -to is a server".into(),
            ));
        }
        if args.checkpoint.is_some() && !matches!(source, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--checkpoint records a server source's SCAN progress; -from is a dump file".into(),
            ));
        }
        if args.checkpoint.is_some() && !matches!(target, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--checkpoint resumes a copy into a server; a dump file is written whole or not \
                 at all, so -to cannot be a dump file"
                    .into(),
            ));
        }
        if args.live || args.live_enable_events {
            live_rules(
                &source,
                &target,
                args.no_replace,
                args.checkpoint.is_some(),
                args.key_type.is_some(),
            )?;
        }
        let slots = match (args.slots, args.partition) {
            (Some(_), Some(_)) => {
                return Err(Error::Usage(
                    "--slots and --partition both choose slots: give one of them".into(),
                ))
            }
            (Some(set), None) => Some(set),
            (None, Some((i, n))) => Some(
                crate::cluster::slots::SlotSet::partition(i, n)
                    .map_err(|e| Error::Usage(format!("--partition: {e}")))?,
            ),
            (None, None) => None,
        };
        if slots.is_some() && !matches!(source, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--slots and --partition filter a server's keys; -from is a dump file".into(),
            ));
        }
        if args.read_from.is_some() && !matches!(source, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--read-from chooses the nodes of a cluster source; -from is a dump file".into(),
            ));
        }
        let timeout = match args.timeout {
            None => DEFAULT_TIMEOUT,
            Some(secs) => {
                timeout_from_secs(secs).map_err(|e| Error::Usage(format!("--timeout: {e}")))?
            }
        };
        if args.rate.is_some() && !matches!(source, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--rate paces reads from a source server; -from is a dump file".into(),
            ));
        }
        if (args.match_pattern.is_some() || args.key_type.is_some())
            && !matches!(source, Endpoint::Server(_))
        {
            return Err(Error::Usage(
                "--match and --type filter a server's SCAN; -from is a dump file".into(),
            ));
        }
        let verify = match (args.verify, args.verify_only) {
            (true, true) => {
                return Err(Error::Usage(
                    "--verify copies and then compares, --verify-only compares without \
                     copying: give one of them"
                        .into(),
                ))
            }
            (true, false) => Verify::After,
            (false, true) => Verify::Only,
            (false, false) => Verify::Off,
        };
        if verify != Verify::Off && !matches!(target, Endpoint::Server(_)) {
            return Err(Error::Usage(
                "--verify and --verify-only compare with a server; -to is a dump file".into(),
            ));
        }
        if verify == Verify::After && source == Endpoint::Stdio {
            return Err(Error::Usage(
                "--verify reads the source again after the copy, and -from - can be read only \
                 once: copy from a file, or compare with --verify-only"
                    .into(),
            ));
        }
        if args.dry_run && verify != Verify::Off {
            return Err(Error::Usage(
                "--dry-run writes and compares nothing: drop --verify / --verify-only".into(),
            ));
        }
        if verify == Verify::Only && args.checkpoint.is_some() {
            return Err(Error::Usage(
                "--checkpoint resumes a copy; --verify-only copies nothing".into(),
            ));
        }
        if (args.live || args.live_enable_events) && verify == Verify::Only {
            return Err(Error::Usage(
                "--live copies and follows changes; --verify-only copies nothing: give one of them"
                    .into(),
            ));
        }
        // Last, once every usage error is ruled out: the files are read once,
        // here, and a bad one is a runtime error (exit 1) naming it.
        if uses_tls {
            let client = Arc::new(TlsClient::new(&args.tls).map_err(Error::TlsFile)?);
            for endpoint in [&mut source, &mut target] {
                if let Endpoint::Server(server) = endpoint {
                    if server.tls {
                        server.tls_client = Some(client.clone());
                    }
                }
            }
        }
        Ok(Config {
            source,
            target,
            silent: args.silent,
            json: args.json,
            copy_ttl: !args.no_ttl,
            replace: !args.no_replace,
            match_pattern: args.match_pattern,
            key_type: args.key_type,
            scan_count: args.scan_count,
            pipeline: args.pipeline,
            rate: args.rate,
            timeout,
            slots,
            read_from: args.read_from.unwrap_or_default(),
            checkpoint: args.checkpoint,
            format: args.format.unwrap_or_default(),
            drop_field_ttl: args.drop_field_ttl,
            live: args.live || args.live_enable_events,
            live_enable_events: args.live_enable_events,
            verify,
            dry_run: args.dry_run,
        })
    }
}

/// What `--live` cannot be combined with.
fn live_rules(
    source: &Endpoint,
    target: &Endpoint,
    no_replace: bool,
    checkpoint: bool,
    key_type: bool,
) -> Result<(), Error> {
    let refuse = |why: &str| Err(Error::Usage(format!("--live {why}")));
    if !matches!(source, Endpoint::Server(_)) {
        return refuse("follows a server's changes; -from is a dump file");
    }
    if !matches!(target, Endpoint::Server(_)) {
        return refuse(
            "applies changes to a server (deleting keys too); -to is a dump file, which is \
             written once",
        );
    }
    if no_replace {
        return refuse("must replace keys that change; it cannot be combined with --no-replace");
    }
    if checkpoint {
        return refuse(
            "cannot resume from a checkpoint: changes made while rump was not running are not \
             replayed, so a live sync always starts with a whole scan",
        );
    }
    if key_type {
        return refuse(
            "cannot be combined with --type yet: a changed key's type is not known without \
             reading it (use --match, or copy every type)",
        );
    }
    Ok(())
}

/// The URI schemes rump reads, as written before `://` (in any case).
const SCHEMES: [&str; 3] = ["redis", "rediss", "unix"];

/// Parses one endpoint as the contract describes; the error is a phrase to
/// follow the flag name, and never holds the endpoint's password, however
/// malformed the text (messages quote only what follows the userinfo, and
/// are masked again here in case one ever does not).
///
/// ```
/// use rump::config::{parse_endpoint, Endpoint, ServerAddr};
///
/// let Ok(Endpoint::Server(server)) = parse_endpoint("redis://:p%40ss@cache.example:6380/2") else {
///     panic!("a server endpoint");
/// };
/// assert_eq!(server.addr, ServerAddr::Tcp { host: "cache.example".into(), port: 6380 });
/// assert_eq!(server.password.as_deref(), Some(&b"p@ss"[..]));
/// assert_eq!(server.to_string(), "cache.example:6380/2"); // never the password
/// assert_eq!(parse_endpoint("-"), Ok(Endpoint::Stdio));
/// assert!(parse_endpoint("redis://host:0").is_err());
/// assert!(parse_endpoint("localhost:6379").unwrap_err().contains("redis://localhost:6379"));
/// ```
pub fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    parse_any(text).map_err(|e| masked(text, &e))
}

fn parse_any(text: &str) -> Result<Endpoint, String> {
    if text == "-" {
        return Ok(Endpoint::Stdio);
    }
    if text.is_empty() {
        return Err("empty endpoint".into());
    }
    if let Some((scheme, rest)) = text.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "redis" => parse_server(rest, false).map(Endpoint::Server),
            "rediss" => parse_server(rest, true).map(Endpoint::Server),
            "unix" => parse_unix(rest).map(Endpoint::Server),
            _ => Err(unknown_scheme(scheme)),
        };
    }
    if let Some(hint) = server_address_hint(text) {
        return Err(hint);
    }
    if let Some(hint) = missing_slashes_hint(text) {
        return Err(hint);
    }
    Ok(Endpoint::File(PathBuf::from(text)))
}

/// The password part of an endpoint as typed, if it has one: what follows
/// the first ':' of the userinfo, which ends at the last '@'. Works on any
/// text, valid or not (no scheme, a mistyped one, `redis:/` with one slash),
/// so that the password can be masked before and whatever the parse.
pub fn raw_password(text: &str) -> Option<&str> {
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => rest,
        Some(_) => text,
        None => match text.split_once(':') {
            Some((scheme, rest)) if SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) => {
                rest.trim_start_matches('/')
            }
            _ => text,
        },
    };
    let at = rest.rfind('@')?;
    let (_, password) = rest[..at].split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `message` with the password of `endpoint` (raw and decoded) masked.
fn masked(endpoint: &str, message: &str) -> String {
    let mut secrets = Secrets::new();
    secrets.add_endpoint(endpoint);
    secrets.redact(message).into_owned()
}

/// RFC 3986 scheme syntax: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn unknown_scheme(scheme: &str) -> String {
    const USE: &str = "use redis://, rediss://, unix:// or a file path";
    if !is_scheme(scheme) {
        return format!("malformed URI scheme ({USE})");
    }
    match closest(&scheme.to_ascii_lowercase(), &SCHEMES) {
        Some(near) => format!("unknown scheme {scheme:?}: did you mean {near}://? ({USE})"),
        None => format!("unknown scheme {scheme:?} ({USE})"),
    }
}

/// `host:port` without a scheme (`127.0.0.1:6379`, `[::1]:6379`,
/// `cache:6379`, with or without `user:password@`) is a forgotten `redis://`
/// far more often than a file name anyone means, so it is refused with the
/// fix instead of silently becoming a dump file.
fn server_address_hint(text: &str) -> Option<String> {
    if text.contains('/') {
        return None;
    }
    let (userinfo, hostport) = match text.rfind('@') {
        Some(at) => (Some(&text[..at]), &text[at + 1..]),
        None => (None, text),
    };
    let (host, port) = hostport.rsplit_once(':')?;
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let plausible = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            v6.contains(':')
                && v6
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":.%".contains(c))
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        }
    };
    if !plausible {
        return None;
    }
    let shown = masked(text, text);
    let file = match userinfo {
        None => format!("./{shown} for a file of that name"),
        Some(_) => "start a file name with ./".to_string(),
    };
    Some(format!(
        "{shown:?} looks like a server address: write redis://{shown} (or {file})"
    ))
}

/// `redis:/host`, `redis:host`, `unix:/path`: a known scheme with fewer than
/// two slashes is a typo, not a file name.
fn missing_slashes_hint(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    if !SCHEMES.contains(&scheme.as_str()) {
        return None;
    }
    let body = rest.trim_start_matches('/');
    let fixed = match (scheme.as_str(), body) {
        ("unix", "") => "unix:///path/to/redis.sock".to_string(),
        ("unix", _) => format!("unix:///{body}"),
        (_, "") => format!("{scheme}://host"),
        _ => format!("{scheme}://{body}"),
    };
    let shown = masked(text, text);
    Some(format!(
        "{shown:?} needs two slashes after \"{scheme}:\": did you mean {}? (or ./{shown} for a file of that name)",
        masked(&fixed, &fixed)
    ))
}

fn parse_server(rest: &str, tls: bool) -> Result<ServerEndpoint, String> {
    // A db path never holds '@', so the userinfo ends at the last one, even
    // when a password holds a literal '/' (or '@', '?', '#').
    let (userinfo, hostpath) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (authority, path) = match hostpath.split_once('/') {
        Some((authority, path)) => (authority, path),
        None => (hostpath, ""),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let user = percent_decode(user).map_err(|e| format!("user name: {e}"))?;
            let pass = pass
                .map(percent_decode)
                .transpose()
                .map_err(|e| format!("password: {e}"))?;
            ((!user.is_empty()).then_some(user), pass)
        }
    };
    let (host, port) = parse_hostport(authority)?;
    let db = parse_db(path)?;
    Ok(ServerEndpoint {
        addr: ServerAddr::Tcp { host, port },
        tls,
        tls_name: None,
        tls_client: None,
        db,
        user,
        password,
        readonly: false,
    })
}

fn parse_hostport(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in host {text:?}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after host [{host}]")),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("invalid port {p:?} (expected 1-65535)")),
        },
    };
    Ok((host.to_string(), port))
}

fn parse_db(path: &str) -> Result<u32, String> {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Ok(0);
    }
    path.parse::<u32>()
        .map_err(|_| format!("invalid db {path:?} (expected a number, as in redis://host:6379/0)"))
}

fn parse_unix(rest: &str) -> Result<ServerEndpoint, String> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !path.starts_with('/') {
        if path.contains('@') {
            // Quoting the path would show the password.
            return Err("a unix:// endpoint takes no user or password in the URI \
                 (use RUMP_FROM_PASSWORD or RUMP_TO_PASSWORD)"
                .into());
        }
        return Err(format!(
            "unix socket path {path:?} must be absolute (unix:///path/to/redis.sock)"
        ));
    }
    let mut db = 0;
    if let Some(query) = query {
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("db", n)) => db = parse_db(n)?,
                // The name only: a value may be a password put there.
                Some((name, _)) => {
                    return Err(format!(
                        "unknown parameter {name:?} (only db=N is understood)"
                    ))
                }
                None => {
                    return Err(format!(
                        "unknown parameter {pair:?} (only db=N is understood)"
                    ))
                }
            }
        }
    }
    Ok(ServerEndpoint {
        addr: ServerAddr::Unix(PathBuf::from(path)),
        tls: false,
        tls_name: None,
        tls_client: None,
        db,
        user: None,
        password: None,
        readonly: false,
    })
}

/// RFC 3986 percent-decoding; the result may be any bytes. The error never
/// quotes the text, which may be a password.
pub fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly: from_str_radix alone would take "%+1".
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("invalid percent-encoding (expected %XX with two hex digits)")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tls::TlsOptions;

    fn server(text: &str) -> ServerEndpoint {
        match parse_endpoint(text) {
            Ok(Endpoint::Server(s)) => s,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn redis_uri_defaults() {
        let s = server("redis://localhost");
        assert_eq!(
            s.addr,
            ServerAddr::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        assert_eq!((s.db, s.tls, s.user, s.password), (0, false, None, None));
        assert_eq!(server("redis://h:7000/").db, 0);
        assert_eq!(server("redis://h:7000/3").db, 3);
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let s = server("redis://:p%40ss%23w%3Ard@host/0");
        assert_eq!(s.user, None);
        assert_eq!(s.password.as_deref(), Some(&b"p@ss#w:rd"[..]));
        let s = server("redis://alice:secret@host:6380/2");
        assert_eq!(s.user.as_deref(), Some(&b"alice"[..]));
        assert_eq!(s.password.as_deref(), Some(&b"secret"[..]));
        assert_eq!(s.to_string(), "host:6380/2");
        assert!(!format!("{s:?}").contains("secret"));
        // A password may itself contain '@': the last one ends the userinfo.
        let s = server("redis://:a@b@host");
        assert_eq!(s.password.as_deref(), Some(&b"a@b"[..]));
    }

    #[test]
    fn ipv6_and_tls() {
        let s = server("rediss://[::1]:6390/1");
        assert!(s.tls);
        assert_eq!(s.to_string(), "[::1]:6390/1");
    }

    #[test]
    fn unix_sockets() {
        let s = server("unix:///tmp/redis.sock?db=4");
        assert_eq!(s.addr, ServerAddr::Unix("/tmp/redis.sock".into()));
        assert_eq!(s.db, 4);
        assert!(parse_endpoint("unix://relative.sock").is_err());
        assert!(parse_endpoint("unix:///x.sock?foo=1").is_err());
    }

    #[test]
    fn files_and_stdio() {
        assert_eq!(parse_endpoint("-"), Ok(Endpoint::Stdio));
        assert_eq!(
            parse_endpoint("backup.rump"),
            Ok(Endpoint::File("backup.rump".into()))
        );
    }

    #[test]
    fn malformed_uris_are_refused() {
        for (text, needle) in [
            ("redis://h:0", "invalid port"),
            ("redis://h:99999", "invalid port"),
            ("redis://h:x", "invalid port"),
            ("redis://h/abc", "invalid db"),
            ("redis://", "missing host"),
            ("redis://[::1", "unclosed"),
            ("redis://:%zz@h", "percent"),
            ("redis://:%+1@h", "percent"),
            ("http://u:hunter2@h", "unknown scheme \"http\""),
            ("unix:///s.sock?pass=x", "unknown parameter \"pass\""),
        ] {
            let e = parse_endpoint(text).expect_err(text);
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_password_may_hold_a_slash() {
        // The userinfo ends at the last '@', not at the first '/'.
        let s = server("redis://admin:Sup3r/Secr3t@host:6379/2");
        assert_eq!(s.user.as_deref(), Some(&b"admin"[..]));
        assert_eq!(s.password.as_deref(), Some(&b"Sup3r/Secr3t"[..]));
        assert_eq!(s.to_string(), "host:6379/2");
        let s = server("redis://:a/b@c/d:e@[::1]:7000/3");
        assert_eq!(s.password.as_deref(), Some(&b"a/b@c/d:e"[..]));
        assert_eq!(s.to_string(), "[::1]:7000/3");
        let s = server("redis://:p?#x@host");
        assert_eq!(s.password.as_deref(), Some(&b"p?#x"[..]));
        // A db path never holds '@', and a host without userinfo is as before.
        assert_eq!(server("redis://host/5").db, 5);
    }

    #[test]
    fn schemes_are_case_insensitive() {
        assert_eq!(server("REDIS://h:1/2").to_string(), "h:1/2");
        assert!(server("Rediss://h").tls);
        let e = parse_endpoint("reddis://h").unwrap_err();
        assert!(e.contains("did you mean redis://?"), "{e}");
        let e = parse_endpoint("tcp://h").unwrap_err();
        assert!(!e.contains("did you mean"), "{e}");
    }

    /// Every parse error of a URI that holds a password, however malformed,
    /// leaves the password out: raw as typed and percent-decoded.
    #[test]
    fn no_parse_error_holds_the_password() {
        for (text, password) in [
            ("redis://:Pw1q%2Fz@h:0", "Pw1q%2Fz"),
            ("redis://:Pw2q/z@h:99999/2", "Pw2q/z"),
            ("redis://:Pw3q/z@h:x", "Pw3q/z"),
            ("redis://u:Pw4q@h/abc", "Pw4q"),
            ("redis://u:Pw5q@h:6379/99999999999", "Pw5q"),
            ("redis://:Pw6q@", "Pw6q"),
            ("redis://:Pw7q@:6379", "Pw7q"),
            ("redis://:Pw8q@[::1", "Pw8q"),
            ("redis://:Pw9q@[::1]x", "Pw9q"),
            ("redis://:Pw10q@[zz:6379", "Pw10q"),
            ("redis://:Pw11q%zz@h", "Pw11q%zz"),
            ("redis://:Pw12q%4@h", "Pw12q%4"),
            ("redis://us%zzer:Pw13q@h", "Pw13q"),
            ("redis://:Pw14q:with:colons@h:bad", "Pw14q:with:colons"),
            ("redis://:Pw15q@ab@c/d@h:0", "Pw15q@ab@c/d"),
            ("rediss://:Pw16q%2F%40@h/x", "Pw16q%2F%40"),
            ("http://user:Pw17q@h", "Pw17q"),
            ("reddis://:Pw18q@h", "Pw18q"),
            ("x:Pw19q@redis://h", "Pw19q"),
            ("red is://:Pw20q@h", "Pw20q"),
            ("unix://:Pw21q@/tmp/redis.sock", "Pw21q"),
            ("unix:///tmp/r.sock?password=Pw22q", "Pw22q"),
            ("unix:///tmp/r.sock?db=1&auth=Pw23q", "Pw23q"),
            ("redis:/:Pw24q@host", "Pw24q"),
            ("redis::Pw25q@host", "Pw25q"),
            ("rediss:/u:Pw26q%21@host", "Pw26q%21"),
            (":Pw27q@127.0.0.1:6379", "Pw27q"),
            ("u:Pw28q@[::1]:6379", "Pw28q"),
            ("redis://:Pw29q\u{e9}%C3%A9@h:0", "Pw29q\u{e9}%C3%A9"),
        ] {
            let e = parse_endpoint(text).expect_err(text);
            assert!(!e.contains(password), "{text}: {e}");
            if let Ok(decoded) = percent_decode(password) {
                let decoded = String::from_utf8_lossy(&decoded);
                assert!(!e.contains(&*decoded), "{text}: {e}");
            }
            // Nor any long-enough piece of it that a message might quote.
            assert!(!e.contains(&password[..4]), "{text}: {e}");
            assert!(!e.contains('\n') && !e.ends_with('.'), "{text}: {e}");
        }
    }

    #[test]
    fn raw_passwords() {
        for (text, password) in [
            ("redis://:pw@h", Some("pw")),
            ("redis://u:p/w@h/0", Some("p/w")),
            ("redis://u@h", None),
            ("redis://h:6379", None),
            ("redis://:@h", None),
            ("redis:/:pw@h", Some("pw")),
            ("REDIS:u:pw@h", Some("pw")),
            (":pw@h:1", Some("pw")),
            ("x:pw@bad://h", Some("pw")),
            ("redis://:a://b@h", Some("a://b")),
            ("backup.rump", None),
        ] {
            assert_eq!(raw_password(text), password, "{text}");
        }
    }

    #[test]
    fn a_server_address_without_a_scheme_is_a_hint() {
        for (text, fix) in [
            ("127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("localhost:6380", "redis://localhost:6380"),
            ("cache.example.com:6379", "redis://cache.example.com:6379"),
            ("[::1]:6379", "redis://[::1]:6379"),
            ("redis:6379", "redis://redis:6379"),
        ] {
            let e = parse_endpoint(text).expect_err(text);
            assert_eq!(
                e,
                format!(
                    "{text:?} looks like a server address: write {fix} (or ./{text} for a file of that name)"
                )
            );
        }
        let e = parse_endpoint(":s3cr3t@10.0.0.1:6379").unwrap_err();
        assert!(e.contains("write redis://:***@10.0.0.1:6379"), "{e}");
        // A path with a '/', or something that is not host:port, is a file.
        for file in [
            "./127.0.0.1:6379",
            "/backups/h:1",
            "backup.rump",
            "h:123456",
            "h:",
            "a b:1",
            "[x]:1",
            "h:6379x",
        ] {
            assert_eq!(
                parse_endpoint(file),
                Ok(Endpoint::File(file.into())),
                "{file}"
            );
        }
    }

    #[test]
    fn a_scheme_with_too_few_slashes_is_a_hint() {
        for (text, fix) in [
            ("redis:/host", "redis://host"),
            ("redis:host", "redis://host"),
            ("redis:/host:6380/2", "redis://host:6380/2"),
            ("rediss:/h", "rediss://h"),
            ("Redis:/h", "redis://h"),
            ("unix:/path/r.sock", "unix:///path/r.sock"),
            ("unix:r.sock", "unix:///r.sock"),
            ("redis:", "redis://host"),
            ("unix:", "unix:///path/to/redis.sock"),
        ] {
            let e = parse_endpoint(text).expect_err(text);
            assert!(e.contains(&format!("did you mean {fix}?")), "{text}: {e}");
            assert!(e.contains(&format!("./{text} for a file")), "{text}: {e}");
        }
        let e = parse_endpoint("redis:/:pw0rd@h").unwrap_err();
        assert!(e.contains("did you mean redis://:***@h?"), "{e}");
        assert_eq!(
            parse_endpoint("./redis:/host"),
            Ok(Endpoint::File("./redis:/host".into()))
        );
    }

    fn args(from: &str, to: &str) -> Args {
        Args {
            from: Some(from.into()),
            to: Some(to.into()),
            ..Args::default()
        }
    }

    #[test]
    fn passwords_from_the_environment() {
        let env = |v: &str| match v {
            "RUMP_FROM_PASSWORD" => Some("from-secret".to_string()),
            "RUMP_TO_PASSWORD" => Some("to-secret".to_string()),
            _ => None,
        };
        let c = Config::from_args(args("redis://a", "redis://:uri@b"), env).unwrap();
        let Endpoint::Server(s) = c.source else {
            panic!()
        };
        assert_eq!(s.password.as_deref(), Some(&b"from-secret"[..]));
        let Endpoint::Server(t) = c.target else {
            panic!()
        };
        assert_eq!(t.password.as_deref(), Some(&b"uri"[..]), "the URI wins");
    }

    #[test]
    fn cross_flag_rules() {
        let none = |_: &str| None;
        let usage = |a: Args| match Config::from_args(a, none) {
            Err(Error::Usage(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(usage(args("a.rump", "b.rump")).contains("both files"));
        assert!(usage(args("-", "-")).contains("both files"));
        assert!(usage(Args {
            to: None,
            ..args("redis://a", "x")
        })
        .contains("-to"));
        assert!(usage(Args {
            from: None,
            ..args("redis://a", "x")
        })
        .contains("-from"));
        let tls = |tls: TlsOptions, from: &str| Args {
            tls,
            ..args(from, "redis://b")
        };
        let ca = TlsOptions {
            ca: Some("ca.pem".into()),
            ..TlsOptions::default()
        };
        assert!(usage(tls(ca, "redis://a")).contains("rediss://"));
        let cert_only = TlsOptions {
            cert: Some("c.pem".into()),
            ..TlsOptions::default()
        };
        assert!(usage(tls(cert_only, "rediss://a")).contains("--tls-cert needs --tls-key"));
        let key_only = TlsOptions {
            key: Some("k.pem".into()),
            ..TlsOptions::default()
        };
        assert!(usage(tls(key_only, "rediss://a")).contains("--tls-key needs --tls-cert"));
        // A usage error is found before any file is read.
        let both_missing = TlsOptions {
            cert: Some("/nonexistent/c.pem".into()),
            ..TlsOptions::default()
        };
        assert!(usage(tls(both_missing, "redis://a")).contains("rediss://"));
        // The files are read last, and a bad one is a runtime error naming it.
        let missing_ca = TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        match Config::from_args(tls(missing_ca, "rediss://a"), none) {
            Err(e @ Error::TlsFile(_)) => {
                assert_eq!(e.exit_code(), 1);
                assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let mut a = args("redis://a", "redis://b");
        a.format = Some(Format::Legacy);
        assert!(usage(a).contains("--format"));
        let mut a = args("a.rump", "redis://b");
        a.match_pattern = Some(b"x*".to_vec());
        assert!(usage(a).contains("--match"));
        let mut a = args("-", "redis://b");
        a.rate = Some(10);
        assert!(usage(a).contains("--rate"));
        let mut a = args("redis://a", "-");
        a.json = true;
        assert!(usage(a).contains("--json"));
        let mut a = args("redis://a", "redis://b");
        (a.verify, a.verify_only) = (true, true);
        assert!(usage(a).contains("give one of them"));
        let mut a = args("redis://a", "b.rump");
        a.verify_only = true;
        assert!(usage(a).contains("dump file"));
        let mut a = args("redis://a", "redis://b");
        (a.verify, a.dry_run) = (true, true);
        assert!(usage(a).contains("--dry-run"));
        let mut a = args("redis://a", "redis://b");
        a.verify_only = true;
        a.checkpoint = Some("cp".into());
        assert!(usage(a).contains("--checkpoint"));
        let mut a = args("a.rump", "redis://b");
        a.verify_only = true;
        assert_eq!(Config::from_args(a, none).unwrap().verify, Verify::Only);
        let mut a = args("redis://a", "out.rump");
        a.no_replace = true;
        assert!(usage(a).contains("--no-replace"));
        let mut a = args("backup.rump", "redis://b");
        a.checkpoint = Some("ck".into());
        assert_eq!(
            usage(a),
            "--checkpoint records a server source's SCAN progress; -from is a dump file"
        );
        let mut a = args("-", "redis://b");
        a.checkpoint = Some("ck".into());
        assert!(usage(a).contains("--checkpoint"));
        let mut a = args("redis://a", "redis://b");
        a.timeout = Some(0.0);
        assert!(usage(a).starts_with("--timeout: "));
        let c = Config::from_args(args("redis://a", "redis://b"), none).unwrap();
        assert!(c.copy_ttl && c.replace);
        assert_eq!((c.scan_count, c.pipeline), (None, None));
        assert_eq!((c.timeout, c.checkpoint), (DEFAULT_TIMEOUT, None));
    }

    #[test]
    fn timeout_and_checkpoint() {
        let mut a = args("redis://a", "redis://b");
        a.timeout = Some(0.5);
        a.checkpoint = Some("run.ckpt".into());
        let c = Config::from_args(a.clone(), |_| None).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.checkpoint, Some(PathBuf::from("run.ckpt")));
        // A dump file is written whole or not at all: nothing to resume.
        a.to = Some("out.rump".into());
        let e = Config::from_args(a, |_| None).unwrap_err().to_string();
        assert!(
            e.contains("--checkpoint resumes a copy into a server"),
            "{e}"
        );
    }

    #[test]
    fn timeout_limits() {
        assert_eq!(timeout_from_secs(0.001), Ok(MIN_TIMEOUT));
        assert!(timeout_from_secs(0.000_999).is_err());
        assert_eq!(timeout_from_secs(86_400.0), Ok(MAX_TIMEOUT));
        assert!(timeout_from_secs(86_400.001).is_err());
        assert!(timeout_from_secs(86_401.0).is_err());
        for bad in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(timeout_from_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(timeout_from_secs(30.0), Ok(DEFAULT_TIMEOUT));
    }
}
