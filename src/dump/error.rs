//! `DumpError`: everything that can go wrong reading or writing a dump file.
//!
//! Every variant names the file (as given by the user, `-` for stdin/stdout),
//! and every reading error names the byte offset where the damage was found,
//! so a user can tell a truncated copy from a flipped bit. Display follows the
//! project style: lowercase, no trailing period, values quoted with `{:?}`.

use std::{error, fmt, io};

/// A dump file could not be read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpError {
    /// The operating system refused an operation on the file.
    Io {
        /// The file name as the user gave it.
        file: String,
        /// What was being done: "read", "write", "create", "commit", ….
        action: &'static str,
        /// Where in the stream, when known.
        offset: Option<u64>,
        /// The underlying error; `source()` returns it. `BrokenPipe` on a
        /// write is shown as the reader having gone away: the dump it got is
        /// incomplete, and the run fails.
        source: io::Error,
    },
    /// The file ends before the structure it was in the middle of.
    Truncated {
        /// The file name.
        file: String,
        /// The offset at which the file ended.
        offset: u64,
        /// What was being read: "header", "block body", "legacy record", ….
        inside: &'static str,
    },
    /// The file ends cleanly after a block, but the end marker that proves
    /// the dump is complete is missing (the writer was interrupted).
    MissingEndMarker {
        /// The file name.
        file: String,
        /// The offset at which the end marker was expected.
        offset: u64,
    },
    /// The first bytes look like a damaged native magic number.
    BadMagic {
        /// The file name.
        file: String,
    },
    /// A native dump of a format version this build cannot read.
    UnsupportedVersion {
        /// The file name.
        file: String,
        /// The version found in the header.
        version: u16,
    },
    /// A native dump using feature flags this build does not know.
    UnsupportedFlags {
        /// The file name.
        file: String,
        /// The flags found in the header.
        flags: u16,
    },
    /// A CRC32C did not match: the bytes were changed after writing.
    ChecksumMismatch {
        /// The file name.
        file: String,
        /// Start offset of the structure whose checksum failed.
        offset: u64,
        /// "header", "block header", "block", "end marker".
        what: &'static str,
    },
    /// A declared length exceeds a limit (checked before any allocation).
    TooLarge {
        /// The file name.
        file: String,
        /// Offset of the length field.
        offset: u64,
        /// What the length is of.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a valid dump at this point.
    Malformed {
        /// The file name.
        file: String,
        /// Offset of the offending structure.
        offset: u64,
        /// What is wrong, lowercase.
        reason: String,
    },
    /// Bytes follow the end marker.
    TrailingData {
        /// The file name.
        file: String,
        /// Offset of the first extra byte.
        offset: u64,
    },
    /// A key cannot be written in the requested format (legacy separator, or
    /// a field over [`MAX_RECORD_LEN`](super::MAX_RECORD_LEN)). Nothing of
    /// this key was written; the dump must be abandoned, never committed.
    Unrepresentable {
        /// The file name.
        file: String,
        /// The key, quoted for display by [`quote_key`](crate::error::quote_key).
        key: String,
        /// Why, lowercase.
        reason: String,
    },
}

impl DumpError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            Self::Io { file, .. }
            | Self::Truncated { file, .. }
            | Self::MissingEndMarker { file, .. }
            | Self::BadMagic { file }
            | Self::UnsupportedVersion { file, .. }
            | Self::UnsupportedFlags { file, .. }
            | Self::ChecksumMismatch { file, .. }
            | Self::TooLarge { file, .. }
            | Self::Malformed { file, .. }
            | Self::TrailingData { file, .. }
            | Self::Unrepresentable { file, .. } => file,
        }
    }

    pub(crate) fn io(
        file: &str,
        action: &'static str,
        offset: Option<u64>,
        source: io::Error,
    ) -> Self {
        Self::Io {
            file: file.to_owned(),
            action,
            offset,
            source,
        }
    }

    pub(crate) fn malformed(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        Self::Malformed {
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dump file {:?}: ", self.file())?;
        match self {
            Self::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe => write!(
                f,
                "the reader of {} went away before the dump was complete (the backup is incomplete)",
                if self.file() == "-" { "standard output" } else { "the pipe" }
            ),
            Self::Io { action, offset: Some(offset), source, .. } => {
                write!(f, "{action} failed at byte offset {offset}: {}", os_text(source))
            }
            Self::Io { action, offset: None, source, .. } => {
                write!(f, "{action} failed: {}", os_text(source))
            }
            Self::Truncated { offset, inside, .. } => {
                write!(f, "truncated: file ends inside the {inside} at byte offset {offset}")
            }
            Self::MissingEndMarker { offset, .. } => write!(
                f,
                "missing end marker at byte offset {offset}: the dump is incomplete (was the writer interrupted?)"
            ),
            Self::BadMagic { .. } => {
                write!(f, "bad magic number at byte offset 0: damaged native dump (converted as text?)")
            }
            Self::UnsupportedVersion { version, .. } => write!(
                f,
                "unsupported format version {version} at byte offset 8 (this build reads version {})",
                super::native::FORMAT_VERSION
            ),
            Self::UnsupportedFlags { flags, .. } => {
                write!(f, "unsupported feature flags {flags:#06x} at byte offset 10")
            }
            Self::ChecksumMismatch { offset, what, .. } => {
                write!(f, "checksum mismatch in {what} at byte offset {offset}")
            }
            Self::TooLarge { offset, what, len, limit, .. } => {
                write!(f, "{what} {len} exceeds limit {limit} at byte offset {offset}")
            }
            Self::Malformed { offset, reason, .. } => write!(f, "{reason} at byte offset {offset}"),
            Self::TrailingData { offset, .. } => {
                write!(f, "unexpected data after the end marker at byte offset {offset}")
            }
            Self::Unrepresentable { key, reason, .. } => write!(f, "cannot write key {key}: {reason}"),
        }
    }
}

impl error::Error for DumpError {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An operating-system error as a lowercase phrase, as the rest of the
/// message: "no space left on device", not "No space left on device (os
/// error 28)".
fn os_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.find(" (os error").map_or(&text[..], |i| &text[..i]);
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_and_offset_lowercase_without_period() {
        let e = DumpError::ChecksumMismatch {
            file: "backup.rump".into(),
            offset: 1_048_593,
            what: "block",
        };
        assert_eq!(
            e.to_string(),
            "dump file \"backup.rump\": checksum mismatch in block at byte offset 1048593"
        );
        let e = DumpError::io(
            "-",
            "write",
            None,
            io::Error::from(io::ErrorKind::BrokenPipe),
        );
        let source = error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(source.map(io::Error::kind), Some(io::ErrorKind::BrokenPipe));
        assert!(!e.to_string().ends_with('.'));
    }

    #[test]
    fn os_errors_read_as_lowercase_phrases_and_a_gone_reader_as_an_incomplete_dump() {
        let full = DumpError::io(
            "/dev/full",
            "write",
            Some(0),
            io::Error::from_raw_os_error(28),
        );
        assert_eq!(
            full.to_string(),
            "dump file \"/dev/full\": write failed at byte offset 0: no space left on device"
        );
        let custom = io::Error::new(io::ErrorKind::InvalidInput, "is a directory");
        assert_eq!(
            DumpError::io("d", "create", None, custom).to_string(),
            "dump file \"d\": create failed: is a directory"
        );
        let gone = |file| DumpError::io(file, "write", Some(9), io::ErrorKind::BrokenPipe.into());
        assert_eq!(
            gone("-").to_string(),
            "dump file \"-\": the reader of standard output went away before the dump was complete (the backup is incomplete)"
        );
        assert!(gone("fifo")
            .to_string()
            .contains(": the reader of the pipe went away"));
    }

    #[test]
    fn keys_are_quoted_by_the_one_quote_key() {
        let e = DumpError::Unrepresentable {
            file: "t".into(),
            key: crate::error::quote_key(b"a\r\n\0\"\\b c\xe2\x9c\x9d"),
            reason: "why".into(),
        };
        assert_eq!(
            e.to_string(),
            "dump file \"t\": cannot write key \"a\\r\\n\\x00\\\"\\\\b c\\xe2\\x9c\\x9d\": why"
        );
        let long = crate::error::quote_key(&[b'x'; 300]);
        assert!(long.ends_with("\"… (300 bytes)"), "{long}");
        assert!(!long.contains('\n'));
    }
}
