//! Dump files: rump's native format, the original Go rump's format, and the
//! atomic file / stdout endpoints they are written to.
//!
//! This module tree owns bytes on disk only. It knows nothing of sockets,
//! threads or Redis commands: the engine feeds a [`DumpWriter`] with the
//! [`Item`]s a source produces, and drains a [`DumpReader`]'s batches into a
//! target. Deciding that an expired key is skipped is the restorer's job.
//!
//! # Writing
//! ```ignore
//! let out = Output::create(path)?;                       // "-" = stdout
//! let mut w = DumpWriter::new(out, path, Format::Native, header)?;
//! for item in batch { w.write(&item)?; }                 // payload Bytes are not copied into blocks
//! let done = w.finish()?;                                // end marker, flush
//! done.out.commit(path)?;                                // fsync + rename (file) or flush (stdout)
//! ```
//! Drop the writer or the `Output` without `commit` on any error: the old
//! file stays, and the temporary file is removed.
//!
//! # Reading
//! ```ignore
//! let mut r = DumpReader::open(Input::open(path)?, path)?;  // detects native / legacy / empty
//! while let Some(batch) = r.next_batch()? { /* restore batch */ }
//! ```
//! `Ok(None)` is returned only after the whole file was verified (native: end
//! marker, record count and whole-stream checksum; legacy: no partial record
//! at the end). Native batches are one block each; a batch is handed out only
//! after its block's CRC32C matched, so nothing from a damaged block reaches
//! a server, and `records()` says how many were handed out before an error.
//! Items' `key` and `payload` are `Bytes` slices of the block buffer.
//! Memory is bounded by one block (about 1 MiB, or one record larger than
//! that) plus what the engine holds in flight.
//!
//! Formats: FORMAT.md (native, byte by byte) and legacy.rs (the original
//! format, verified against the Go source).

mod atomic;
mod error;
mod legacy;
mod native;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Stdin, Write};
use std::str::FromStr;

pub use atomic::{AtomicFile, Output};
pub use error::DumpError;
pub use legacy::EXPIRED;
pub use native::DEFAULT_BLOCK_SIZE;

use crate::engine::clock::now_ms;
use crate::engine::item::Item;
use crate::error::quote_key;

/// Longest key and longest payload a dump may hold, each: Redis's default
/// `proto-max-bulk-len` (512 MiB). Writers refuse longer fields and readers
/// reject longer lengths before allocating anything for them.
pub const MAX_RECORD_LEN: usize = 512 * 1024 * 1024;

/// Latest expiry time a dump may hold, Unix milliseconds: `RESTORE` takes a
/// signed 64-bit ttl, so anything above `i64::MAX` would wrap. Writers refuse
/// later ones and readers reject them, naming the offset.
pub const MAX_EXPIRE_AT_MS: u64 = i64::MAX as u64;

/// What a native dump records about where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpHeader {
    /// The source's `redis_version` from `INFO server` (at most 255 bytes).
    pub redis_version: String,
    /// RDB version of the payloads (see [`rdb_version_of`]); 0 when unknown,
    /// in which case the writer takes it from the first payload it writes.
    pub rdb_version: u16,
    /// The source database number.
    pub db: u32,
    /// When the dump started, Unix milliseconds.
    pub started_at_ms: u64,
}

/// The RDB version a `DUMP` payload was serialised with: a payload ends with
/// a 2-byte little-endian RDB version and an 8-byte CRC64. `None` if the
/// payload is too short to be one.
pub fn rdb_version_of(payload: &[u8]) -> Option<u16> {
    let n = payload.len();
    let v = payload.get(n.checked_sub(10)?..n - 8)?;
    Some(u16::from_le_bytes([v[0], v[1]]))
}

/// The format a dump is written in (`--format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// rump's own: versioned header, checksummed blocks, end marker.
    #[default]
    Native,
    /// The original Go rump's `key✝✝payload✝✝ttl✝✝`: relative TTLs, no
    /// checksum, cannot hold keys or payloads containing the separator.
    Legacy,
}

impl Format {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Legacy => "legacy",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--format` got a value that is not a format name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFormatError(String);

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown dump format {:?} (choices: native, legacy)",
            self.0
        )
    }
}

impl std::error::Error for ParseFormatError {}

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(Self::Native),
            "legacy" => Ok(Self::Legacy),
            _ => Err(ParseFormatError(s.to_owned())),
        }
    }
}

/// What a finished writer hands back.
#[derive(Debug)]
pub struct Written<W> {
    /// The underlying writer, flushed (commit it if it is an [`Output`]).
    pub out: W,
    /// Records written.
    pub records: u64,
    /// Keys not written because they had expired before reaching the
    /// writer (legacy only: its relative TTLs cannot express "already
    /// expired"; the native format stores them and the restorer skips them).
    pub skipped_expired: u64,
    /// Bytes written.
    pub bytes: u64,
}

enum WriterKind<W: Write> {
    Native(native::NativeWriter<W>),
    Legacy(legacy::LegacyWriter<W>),
}

/// Writes items to a dump in either format.
pub struct DumpWriter<W: Write> {
    kind: WriterKind<W>,
}

impl<W: Write> DumpWriter<W> {
    /// A writer to `out`, named `name` in errors. Nothing is written until
    /// the first block is full or [`finish`](Self::finish) (the header may
    /// take its RDB version from the first payload). `header` is ignored by
    /// the legacy format, which has none.
    ///
    /// # Errors
    /// [`DumpError::TooLarge`] if `header.redis_version` exceeds 255 bytes.
    pub fn new(out: W, name: &str, format: Format, header: DumpHeader) -> Result<Self, DumpError> {
        let kind = match format {
            Format::Native => WriterKind::Native(native::NativeWriter::new(out, name, header)?),
            Format::Legacy => WriterKind::Legacy(legacy::LegacyWriter::new(out, name)),
        };
        Ok(Self { kind })
    }

    /// Native only: target block body size (default [`DEFAULT_BLOCK_SIZE`]).
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> Self {
        if let WriterKind::Native(w) = &mut self.kind {
            w.set_block_size(bytes);
        }
        self
    }

    /// Append one item.
    ///
    /// # Errors
    /// [`DumpError::Unrepresentable`] (nothing of the item was written; the
    /// dump must be abandoned) or [`DumpError::Io`].
    pub fn write(&mut self, item: &Item) -> Result<(), DumpError> {
        match &mut self.kind {
            WriterKind::Native(w) => w.write(item),
            WriterKind::Legacy(w) => w.write(item),
        }
    }

    /// Append a batch, as it comes off the channel.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_batch(&mut self, items: &[Item]) -> Result<(), DumpError> {
        items.iter().try_for_each(|i| self.write(i))
    }

    /// Write what is pending and the end marker, flush, and hand back the
    /// underlying writer with counts.
    ///
    /// # Errors
    /// [`DumpError::Io`].
    pub fn finish(self) -> Result<Written<W>, DumpError> {
        match self.kind {
            WriterKind::Native(w) => w.finish(),
            WriterKind::Legacy(w) => w.finish(),
        }
    }
}

/// What [`DumpReader::open`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpKind {
    /// rump's own format.
    Native,
    /// The original Go rump's format.
    Legacy,
    /// A 0-byte file: a valid dump of an empty database.
    Empty,
}

enum ReaderKind<R: Read> {
    Empty,
    Native(native::NativeReader<BufReader<R>>),
    Legacy(legacy::LegacyReader<BufReader<R>>),
}

/// Reads a dump of either format, one verified batch at a time.
pub struct DumpReader<R: Read> {
    kind: ReaderKind<R>,
    file: String,
    failed: Option<u64>,
}

impl<R: Read> DumpReader<R> {
    /// Detect the format from the first bytes and, for native, read and
    /// verify the header. A file starting with the native magic is native; a
    /// file whose first 8 bytes are at most 2 bytes away from it, or that is
    /// a strict prefix of it, is a damaged native dump; anything else is
    /// legacy.
    ///
    /// # Errors
    /// Any header problem, as a [`DumpError`] naming `name` and the offset.
    pub fn open(r: R, name: &str) -> Result<Self, DumpError> {
        let mut r = BufReader::with_capacity(64 * 1024, r);
        let mut prefix = [0u8; 8];
        let n = native::read_full(&mut r, &mut prefix)
            .map_err(|(n, e)| DumpError::io(name, "read", Some(n as u64), e))?;
        let prefix = &prefix[..n];
        let kind = if n == 0 {
            ReaderKind::Empty
        } else if prefix == native::MAGIC {
            ReaderKind::Native(native::NativeReader::open(r, name)?)
        } else if n < native::MAGIC.len() && native::MAGIC.starts_with(prefix) {
            return Err(DumpError::Truncated {
                file: name.to_owned(),
                offset: n as u64,
                inside: "header",
            });
        } else if n == native::MAGIC.len()
            && prefix
                .iter()
                .zip(native::MAGIC)
                .filter(|(a, b)| **a != *b)
                .count()
                <= 2
        {
            return Err(DumpError::BadMagic {
                file: name.to_owned(),
            });
        } else {
            ReaderKind::Legacy(legacy::LegacyReader::new(r, name, prefix))
        };
        Ok(Self {
            kind,
            file: name.to_owned(),
            failed: None,
        })
    }

    /// The format found.
    pub fn kind(&self) -> DumpKind {
        match self.kind {
            ReaderKind::Empty => DumpKind::Empty,
            ReaderKind::Native(_) => DumpKind::Native,
            ReaderKind::Legacy(_) => DumpKind::Legacy,
        }
    }

    /// The native header; `None` for legacy and empty dumps.
    pub fn header(&self) -> Option<&DumpHeader> {
        match &self.kind {
            ReaderKind::Native(r) => Some(r.header()),
            _ => None,
        }
    }

    /// Records handed out so far (for "N keys restored before the damage").
    pub fn records(&self) -> u64 {
        match &self.kind {
            ReaderKind::Empty => 0,
            ReaderKind::Native(r) => r.records(),
            ReaderKind::Legacy(r) => r.records(),
        }
    }

    /// Bytes of the file consumed (native) or handed out (legacy).
    pub fn offset(&self) -> u64 {
        match &self.kind {
            ReaderKind::Empty => 0,
            ReaderKind::Native(r) => r.offset(),
            ReaderKind::Legacy(r) => r.offset(),
        }
    }

    /// The next batch of items, never empty; `Ok(None)` once the whole dump
    /// has been read and verified. Legacy TTLs are made absolute with the
    /// clock at the time of this call.
    ///
    /// # Errors
    /// Any damage, as a [`DumpError`] naming the file and byte offset. The
    /// reader is then spent: further calls return an error too, never a
    /// shorter dump.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Item>>, DumpError> {
        if let Some(offset) = self.failed {
            return Err(DumpError::malformed(
                &self.file,
                offset,
                "dump reader used after an earlier error",
            ));
        }
        let res = match &mut self.kind {
            ReaderKind::Empty => Ok(None),
            ReaderKind::Native(r) => r.next_batch(),
            ReaderKind::Legacy(r) => r.next_batch(),
        };
        if res.is_err() {
            self.failed = Some(self.offset());
        }
        res
    }
}

/// The source of a dump as the user named it: `-` is stdin.
#[derive(Debug)]
pub enum Input {
    /// A dump file.
    File(File),
    /// Standard input.
    Stdin(Stdin),
}

impl Input {
    /// Open `path` for reading (`-` = stdin).
    ///
    /// # Errors
    /// [`DumpError::Io`] naming the file.
    pub fn open(path: &str) -> Result<Self, DumpError> {
        if path == "-" {
            return Ok(Self::Stdin(io::stdin()));
        }
        File::open(path)
            .map(Self::File)
            .map_err(|e| DumpError::io(path, "open", None, e))
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File(f) => f.read(buf),
            Self::Stdin(s) => s.read(buf),
        }
    }
}

/// Refuse a field the readers would reject.
fn check_record_len(file: &str, item: &Item) -> Result<(), DumpError> {
    let refuse = |reason| {
        Err(DumpError::Unrepresentable {
            file: file.to_owned(),
            key: quote_key(&item.key),
            reason,
        })
    };
    for (name, len) in [("key", item.key.len()), ("payload", item.payload.len())] {
        if len > MAX_RECORD_LEN {
            return refuse(format!(
                "its {name} is {len} bytes, over the limit of {MAX_RECORD_LEN}"
            ));
        }
    }
    if item.expire_at_ms > MAX_EXPIRE_AT_MS {
        return refuse(format!(
            "its expiry time {} is beyond the latest RESTORE accepts ({MAX_EXPIRE_AT_MS})",
            item.expire_at_ms
        ));
    }
    Ok(())
}

/// A failed write through a writer's `BufWriter`, at the first byte the
/// destination did not take (`offset` counts bytes handed to the buffer;
/// what is still in it never went out), so `/dev/full` fails at 0.
fn write_error<W: Write>(file: &str, offset: u64, out: &BufWriter<W>, e: io::Error) -> DumpError {
    let at = offset.saturating_sub(out.buffer().len() as u64);
    DumpError::io(file, "write", Some(at), e)
}

/// Run the reader over arbitrary bytes, as a fuzz target does: it must
/// return (an error or the items) without panicking, and without allocating
/// more than a small multiple of the input.
#[doc(hidden)]
pub fn fuzz_read(data: &[u8]) {
    let Ok(mut r) = DumpReader::open(data, "fuzz") else {
        return;
    };
    let mut total = 0usize;
    while let Ok(Some(batch)) = r.next_batch() {
        assert!(!batch.is_empty(), "batches are never empty");
        for item in &batch {
            assert!(item.key.len() <= MAX_RECORD_LEN && item.payload.len() <= MAX_RECORD_LEN);
            total += item.key.len() + item.payload.len();
        }
        assert!(
            total <= data.len(),
            "items cannot hold more bytes than the input"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn zero_byte_file_is_an_empty_dump() {
        let mut r = DumpReader::open(&b""[..], "empty.rump").unwrap();
        assert_eq!(r.kind(), DumpKind::Empty);
        assert_eq!(r.header(), None);
        assert_eq!(r.next_batch().unwrap(), None);
    }

    #[test]
    fn format_parses_and_lists_the_choices() {
        assert_eq!("native".parse::<Format>(), Ok(Format::Native));
        assert_eq!("legacy".parse::<Format>(), Ok(Format::Legacy));
        let e = "rdb".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown dump format \"rdb\" (choices: native, legacy)"
        );
        assert_eq!(Format::default().to_string(), "native");
    }

    #[test]
    fn rdb_version_sits_before_the_crc64() {
        // Shaped like DUMP of the string "hello": type, value, RDB version 11
        // (0b 00), then 8 CRC64 bytes (made up: only the position matters).
        let dump = b"\x00\x05hello\x0b\x00\xf3\x06\x1a\x3c\x5e\xd6\x5d\x1b";
        assert_eq!(rdb_version_of(dump), Some(11));
        assert_eq!(rdb_version_of(&dump[..9]), None);
        assert_eq!(rdb_version_of(&[0; 10]), Some(0));
    }

    #[test]
    fn reader_is_spent_after_an_error() {
        let mut w =
            DumpWriter::new(Vec::new(), "t", Format::Native, DumpHeader::default()).unwrap();
        w.write(&Item {
            key: Bytes::from_static(b"k"),
            payload: Bytes::from_static(b"v"),
            expire_at_ms: 0,
            page: Default::default(),
        })
        .unwrap();
        let mut bytes = w.finish().unwrap().out;
        bytes.truncate(bytes.len() - 1);
        let mut r = DumpReader::open(&bytes[..], "t").unwrap();
        assert_eq!(r.next_batch().unwrap().map(|b| b.len()), Some(1));
        assert!(r.next_batch().is_err());
        assert!(r.next_batch().is_err(), "never Ok(None) after damage");
    }

    #[test]
    fn record_length_limit_is_exact_and_both_writers_refuse_beyond_it() {
        // vec![0; n] is calloc'd: the pages are never touched, so this costs
        // no real memory.
        let at_limit = Bytes::from(vec![0u8; MAX_RECORD_LEN]);
        let over = Bytes::from(vec![0u8; MAX_RECORD_LEN + 1]);
        let ok = Item {
            key: Bytes::from_static(b"big"),
            payload: at_limit,
            expire_at_ms: 0,
            page: Default::default(),
        };
        assert!(check_record_len("t", &ok).is_ok());
        for format in [Format::Native, Format::Legacy] {
            let mut w = DumpWriter::new(Vec::new(), "t", format, DumpHeader::default()).unwrap();
            let e = w.write(&Item {
                key: Bytes::from_static(b"big"),
                payload: over.clone(),
                expire_at_ms: 0,
                page: Default::default(),
            });
            let e = e.unwrap_err().to_string();
            assert_eq!(
                e,
                format!("dump file \"t\": cannot write key \"big\": its payload is {} bytes, over the limit of {MAX_RECORD_LEN}", MAX_RECORD_LEN + 1)
            );
        }
    }

    #[test]
    fn writers_refuse_an_expiry_beyond_i64_max() {
        for format in [Format::Native, Format::Legacy] {
            let mut w = DumpWriter::new(Vec::new(), "t", format, DumpHeader::default()).unwrap();
            let e = w.write(&Item {
                key: Bytes::from_static(b"late"),
                payload: Bytes::new(),
                expire_at_ms: MAX_EXPIRE_AT_MS + 1,
                page: Default::default(),
            });
            assert_eq!(
                e.unwrap_err().to_string(),
                "dump file \"t\": cannot write key \"late\": its expiry time 9223372036854775808 is beyond the latest RESTORE accepts (9223372036854775807)"
            );
        }
    }

    #[test]
    fn fuzz_read_survives_mangled_inputs() {
        let mut seeds: Vec<Vec<u8>> = vec![
            Vec::new(),
            native::MAGIC.to_vec(),
            b"k\xe2\x9c\x9d\xe2\x9c\x9d".to_vec(),
        ];
        let mut w = DumpWriter::new(Vec::new(), "t", Format::Native, DumpHeader::default())
            .unwrap()
            .block_size(40);
        for i in 0..5u8 {
            w.write(&Item {
                key: Bytes::from(vec![i; 3]),
                payload: Bytes::from(vec![i; 30]),
                expire_at_ms: 9,
                page: Default::default(),
            })
            .unwrap();
        }
        seeds.push(w.finish().unwrap().out);
        let mut l =
            DumpWriter::new(Vec::new(), "t", Format::Legacy, DumpHeader::default()).unwrap();
        l.write(&Item {
            key: Bytes::from_static(b"k"),
            payload: Bytes::from_static(b"v"),
            expire_at_ms: 0,
            page: Default::default(),
        })
        .unwrap();
        seeds.push(l.finish().unwrap().out);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for seed in &seeds {
            fuzz_read(seed);
            for _ in 0..500 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut d = seed.clone();
                match x % 3 {
                    0 if !d.is_empty() => {
                        let at = (x >> 8) as usize % d.len();
                        d[at] = (x >> 32) as u8;
                    }
                    1 => d.truncate((x >> 8) as usize % (d.len() + 1)),
                    _ => d.extend_from_slice(&x.to_le_bytes()),
                }
                fuzz_read(&d);
            }
        }
    }
}
