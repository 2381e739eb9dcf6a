//! Passwords that must never reach the screen: a process-wide registry of
//! them and [`redact`], which masks every registered one in a line before
//! `main` prints it.
//!
//! Why a registry rather than careful formatting alone: a server may echo a
//! password back inside an error we only pass on (with `AUTH` renamed, Redis
//! answers `ERR unknown command 'AUTH', with args beginning with: 'hunter2'`),
//! so the text of a message cannot be trusted, whoever built it. The registry
//! is filled first thing in `main`, from the raw `-from`/`-to` values and the
//! password variables, before the command line is even validated, so a usage
//! error is masked too.
//!
//! Deliberately not here: URI syntax. Which part of an endpoint is its
//! password is `config::raw_password`'s business.

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Mutex, PoisonError};

use crate::config::{percent_decode, raw_password};

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Shortest leading part of a password that is masked on its own. Redis cuts
/// the arguments it echoes at 128 bytes, so a long password can show up as
/// just its first characters; 16 of them are already far too many to print,
/// and fewer would start masking ordinary words.
pub const MIN_MASKED_PREFIX: usize = 16;

/// The environment variables a password may come from (see `Config`).
pub const PASSWORD_VARS: [&str; 2] = ["RUMP_FROM_PASSWORD", "RUMP_TO_PASSWORD"];

/// A set of secrets to mask, longest first so that a secret containing
/// another is masked whole.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    list: Vec<String>,
}

impl Secrets {
    /// No secrets.
    pub const fn new() -> Secrets {
        Secrets { list: Vec::new() }
    }

    /// The passwords on a command line and in the environment: those of the
    /// `-from`/`-to` values (in any spelling, valid or not) and of
    /// [`PASSWORD_VARS`].
    pub fn from_command_line(args: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> Secrets {
        let mut secrets = Secrets::new();
        for endpoint in crate::cli::raw_endpoints(args) {
            secrets.add_endpoint(&endpoint);
        }
        for var in PASSWORD_VARS {
            if let Some(value) = env(var) {
                secrets.add(value.as_bytes());
            }
        }
        secrets
    }

    /// Adds `secret` (compared as lossy UTF-8, so binary passwords are masked
    /// the way they would be printed), and its `{:?}`-escaped form when that
    /// differs. Empty secrets are ignored.
    pub fn add(&mut self, secret: &[u8]) {
        let text = String::from_utf8_lossy(secret).into_owned();
        let escaped = format!("{text:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        if escaped != text {
            self.insert(escaped.to_string());
        }
        self.insert(text);
    }

    /// Adds the password of an endpoint as typed, both raw and
    /// percent-decoded, whether or not the endpoint is valid.
    pub fn add_endpoint(&mut self, endpoint: &str) {
        if let Some(raw) = raw_password(endpoint) {
            self.add(raw.as_bytes());
            if let Ok(decoded) = percent_decode(raw) {
                self.add(&decoded);
            }
        }
    }

    /// Adds every secret of `other`.
    pub fn merge(&mut self, other: Secrets) {
        for secret in other.list {
            self.insert(secret);
        }
    }

    fn insert(&mut self, secret: String) {
        if secret.is_empty() || self.list.contains(&secret) {
            return;
        }
        let at = self.list.partition_point(|s| s.len() >= secret.len());
        self.list.insert(at, secret);
    }

    /// `text` with every secret, and every leading part of one at least
    /// [`MIN_MASKED_PREFIX`] bytes long, replaced by [`MASK`].
    ///
    /// ```
    /// use rump::secrets::Secrets;
    ///
    /// let mut secrets = Secrets::new();
    /// secrets.add(b"hunter2");
    /// assert_eq!(
    ///     secrets.redact("ERR unknown command 'AUTH', with args beginning with: 'hunter2'"),
    ///     "ERR unknown command 'AUTH', with args beginning with: '***'"
    /// );
    /// ```
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.list.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        let mut copied = 0;
        let mut i = 0;
        while i < text.len() {
            match self.masked_len(&text[i..]) {
                Some(n) => {
                    out.push_str(&text[copied..i]);
                    out.push_str(MASK);
                    i += n;
                    copied = i;
                }
                None => i += text[i..].chars().next().map_or(1, char::len_utf8),
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// How many bytes at the start of `text` are a secret or a long enough
    /// leading part of one; the longest such match.
    fn masked_len(&self, text: &str) -> Option<usize> {
        let mut best = None;
        for secret in &self.list {
            let mut n = text
                .bytes()
                .zip(secret.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            while !secret.is_char_boundary(n) {
                n -= 1;
            }
            let hit = n == secret.len() || n >= MIN_MASKED_PREFIX;
            if hit && best.map_or(true, |b| n > b) {
                best = Some(n);
            }
        }
        best
    }
}

static REGISTRY: Mutex<Secrets> = Mutex::new(Secrets::new());

/// Adds the command line's and the environment's passwords to the registry
/// (see [`Secrets::from_command_line`]). `main` calls it before parsing.
pub fn register_command_line(args: &[OsString]) {
    let found = Secrets::from_command_line(args, |var| std::env::var_os(var));
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .merge(found);
}

/// Adds one secret to the registry.
pub fn register(secret: &[u8]) {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add(secret);
}

/// `text` with every registered secret masked: run every line rump prints
/// about a run through it.
pub fn redact(text: &str) -> Cow<'_, str> {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Secrets {
        let mut s = Secrets::new();
        for secret in list {
            s.add(secret.as_bytes());
        }
        s
    }

    #[test]
    fn every_occurrence_is_masked() {
        let s = secrets(&["hunter2"]);
        assert_eq!(s.redact("a hunter2 b hunter2"), "a *** b ***");
        assert_eq!(s.redact("hunter2"), "***");
        assert_eq!(s.redact("hunter"), "hunter");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
        assert_eq!(Secrets::new().redact("hunter2"), "hunter2");
    }

    #[test]
    fn one_character_and_overlapping_secrets() {
        assert_eq!(secrets(&["x"]).redact("xax"), "***a***");
        // The longer secret wins, so no tail of it is left showing.
        let s = secrets(&["abc", "abcdef"]);
        assert_eq!(s.redact("[abcdef] [abc]"), "[***] [***]");
        let s = secrets(&["abcdef", "abc"]);
        assert_eq!(s.redact("[abcdef] [abc]"), "[***] [***]");
    }

    #[test]
    fn empty_secrets_are_ignored() {
        let s = secrets(&[""]);
        assert_eq!(s.redact("text"), "text");
        assert!(s.list.is_empty());
    }

    #[test]
    fn binary_and_escaped_passwords() {
        let mut s = Secrets::new();
        s.add(b"p\xffw\n");
        // As a lossy conversion prints it, and as `{:?}` prints it.
        assert_eq!(s.redact("[p\u{fffd}w\n]"), "[***]");
        assert_eq!(s.redact("[p\u{fffd}w\\n]"), "[***]");
    }

    #[test]
    fn multibyte_text_is_kept_whole() {
        let s = secrets(&["é1"]);
        assert_eq!(s.redact("ééé1 ü"), "éé*** ü");
    }

    #[test]
    fn a_truncated_echo_of_a_long_password_is_masked() {
        let long = "0123456789abcdefghijklmnopqrstuvwxyz".repeat(5);
        let s = secrets(&[&long]);
        // Redis echoes at most 128 bytes of arguments.
        let echo = format!("with args beginning with: '{}'", &long[..120]);
        assert_eq!(s.redact(&echo), "with args beginning with: '***'");
        // The boundary: MIN_MASKED_PREFIX leading bytes are masked, one fewer
        // is an ordinary coincidence.
        let at = format!("'{}'", &long[..MIN_MASKED_PREFIX]);
        assert_eq!(s.redact(&at), "'***'");
        let below = format!("'{}'", &long[..MIN_MASKED_PREFIX - 1]);
        assert_eq!(s.redact(&below), below);
    }

    #[test]
    fn endpoint_passwords_raw_and_decoded() {
        let mut s = Secrets::new();
        s.add_endpoint("redis://admin:Sup3r%2FSecr3t@host:6379/2");
        assert_eq!(s.redact("Sup3r%2FSecr3t Sup3r/Secr3t"), "*** ***");
        assert_eq!(s.redact("admin"), "admin", "user names are not secrets");
        let mut s = Secrets::new();
        s.add_endpoint("redis://:bad%zzpw@host");
        assert_eq!(s.redact("bad%zzpw"), "***");
    }

    #[test]
    fn command_line_in_every_spelling_and_the_environment() {
        let args: Vec<OsString> = [
            "-from",
            "redis://:one@a",
            "--to=redis://:two@b",
            "-from=unix://:three@/s",
            "--to",
            "redis:/:four@h",
            "--match",
            "x:*@y",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let env = |var: &str| match var {
            "RUMP_FROM_PASSWORD" => Some(OsString::from("five")),
            "RUMP_TO_PASSWORD" => Some(OsString::from("six")),
            _ => None,
        };
        let s = Secrets::from_command_line(&args, env);
        assert_eq!(
            s.redact("one two three four five six x:*@y"),
            "*** *** *** *** *** *** x:*@y"
        );
    }

    #[test]
    fn the_registry_masks_what_was_registered() {
        register(b"registry-test-secret-7f3a");
        assert_eq!(redact("[registry-test-secret-7f3a]"), "[***]");
    }
}
