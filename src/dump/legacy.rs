//! The original Go rump's file format, read and written for compatibility.
//!
//! Layout, as verified in stickermule/rump `pkg/file/file.go` (the version
//! with TTL support): the file is a bare sequence of records
//!
//! ```text
//! key ✝✝ value ✝✝ ttl ✝✝      (✝ = U+271D, UTF-8 e2 9c 9d; ✝✝ is 6 bytes)
//! ```
//!
//! with no header, no lengths and no checksum. The writer does
//! `w.WriteString(p.Key + "✝✝" + p.Value + "✝✝" + p.TTL + "✝✝")`; the reader
//! is a `bufio.Scanner` whose split function cuts at the leftmost "✝✝"
//! (`strings.Index`) and takes three tokens per record. `value` is the raw
//! `DUMP` payload. `ttl` comes from `pkg/redis/redis.go`: the decimal `PTTL`
//! reply, i.e. milliseconds remaining at dump time, with -1 (no expiry)
//! rewritten to "0", and "0" for every key when TTL sync is off. A key that
//! vanished between `DUMP` and `PTTL` gets PTTL's "-2" verbatim.
//!
//! Consequences, all documented for users:
//! - TTLs are relative: a restore applies them from restore time. The reader
//!   converts them to absolute expiry with the clock at read time; a
//!   negative ttl reads as [`EXPIRED`] so the restorer skips and counts it.
//! - A field containing "✝✝", or ending in a single "✝" (whose last bytes
//!   would pair with the separator and move the cut), cannot be represented;
//!   the writer refuses such a key with an error naming it.
//! - Truncation exactly at a record boundary cannot be detected; anywhere
//!   else it is an error (the Go tool silently dropped a partial record).
//! - Files written by Go rump before TTL support (`key✝✝value✝✝`, two
//!   fields) are not read: the format has no marker to tell them apart.

use std::io::{BufWriter, ErrorKind, Read, Write};
use std::ops::Range;

use bytes::BytesMut;
use memchr::memmem;

use super::{now_ms, DumpError, Written, MAX_EXPIRE_AT_MS, MAX_RECORD_LEN};
use crate::engine::item::Item;
use crate::error::quote_key;

/// The separator, "✝✝".
pub(crate) const SEP: &[u8] = "✝✝".as_bytes();
/// One "✝": a field ending with it would make the separator match early.
const CROSS: &[u8] = "✝".as_bytes();
/// `expire_at_ms` given to records whose ttl was negative: a time long past,
/// so the restorer counts the key as already expired.
pub const EXPIRED: u64 = 1;
/// Longest ttl field accepted: "-" and 19 digits.
const MAX_TTL_LEN: usize = 20;
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 256 * 1024;
/// A batch is closed at this many bytes or records.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_RECORDS: usize = 4096;

/// Why a field cannot be written in the legacy format, if it cannot.
pub(crate) fn unrepresentable(field: &[u8]) -> Option<&'static str> {
    if memmem::find(field, SEP).is_some() {
        Some("contains the legacy separator \"✝✝\" (e2 9c 9d e2 9c 9d)")
    } else if field.ends_with(CROSS) {
        Some("ends with \"✝\" (e2 9c 9d), which would merge with the legacy separator")
    } else {
        None
    }
}

/// Writes the legacy format straight through a `BufWriter` (large payloads
/// bypass its buffer).
pub(crate) struct LegacyWriter<W: Write> {
    out: BufWriter<W>,
    file: String,
    offset: u64,
    records: u64,
    skipped_expired: u64,
}

impl<W: Write> LegacyWriter<W> {
    pub(crate) fn new(out: W, file: &str) -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, out),
            file: file.to_owned(),
            offset: 0,
            records: 0,
            skipped_expired: 0,
        }
    }

    pub(crate) fn write(&mut self, item: &Item) -> Result<(), DumpError> {
        super::check_record_len(&self.file, item)?;
        for (name, field) in [("key", &item.key), ("payload", &item.payload)] {
            if let Some(why) = unrepresentable(field) {
                return Err(DumpError::Unrepresentable {
                    file: self.file.clone(),
                    key: quote_key(&item.key),
                    reason: format!("its {name} {why}; use the native format"),
                });
            }
        }
        let ttl = if item.expire_at_ms == 0 {
            0
        } else {
            match item.expire_at_ms.checked_sub(now_ms()) {
                Some(left) if left > 0 => left,
                // Expired while in flight: writing "0" would make it immortal.
                _ => {
                    self.skipped_expired += 1;
                    return Ok(());
                }
            }
        };
        let ttl = ttl.to_string();
        for piece in [
            &item.key[..],
            SEP,
            &item.payload[..],
            SEP,
            ttl.as_bytes(),
            SEP,
        ] {
            self.out
                .write_all(piece)
                .map_err(|e| super::write_error(&self.file, self.offset, &self.out, e))?;
            self.offset += piece.len() as u64;
        }
        self.records += 1;
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Written<W>, DumpError> {
        let Self {
            out,
            file,
            offset,
            records,
            skipped_expired,
        } = self;
        let out = out.into_inner().map_err(|e| {
            let (e, out) = e.into_parts();
            super::write_error(&file, offset, &out, e)
        })?;
        Ok(Written {
            out,
            records,
            skipped_expired,
            bytes: offset,
        })
    }
}

/// A record found in the buffer, as ranges into it.
struct Span {
    key: Range<usize>,
    payload: Range<usize>,
    expire_at_ms: u64,
}

/// The three fields of a record, in order, as error messages name them.
const FIELDS: [&str; 3] = ["key", "payload", "ttl"];

/// Stream-parses the legacy format with a bounded buffer. The format has no
/// lengths, so a field is over its limit as soon as that many bytes have
/// gone by without a separator: the buffer never holds more than one
/// unfinished record (key and payload at most `max_field` bytes each, the
/// ttl at most [`MAX_TTL_LEN`], three separators) plus one read chunk
/// beyond what has been handed out.
pub(crate) struct LegacyReader<R: Read> {
    r: R,
    file: String,
    buf: BytesMut,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Separators found so far for the record starting at `buf[0]`.
    seps: [usize; 3],
    nseps: usize,
    /// Where the next separator search starts.
    scan: usize,
    eof: bool,
    records: u64,
    /// Longest key or payload accepted; [`MAX_RECORD_LEN`] but in tests.
    max_field: usize,
}

impl<R: Read> LegacyReader<R> {
    /// `prefix` holds the bytes the format detector already consumed.
    pub(crate) fn new(r: R, file: &str, prefix: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(prefix);
        Self {
            r,
            file: file.to_owned(),
            buf,
            buf_start: 0,
            seps: [0; 3],
            nseps: 0,
            scan: 0,
            eof: false,
            records: 0,
            max_field: MAX_RECORD_LEN,
        }
    }

    /// Lower the per-field limit (default [`MAX_RECORD_LEN`]), so that tests
    /// can reach it with kilobytes instead of half a gigabyte.
    #[cfg(test)]
    pub(crate) fn with_max_field(mut self, n: usize) -> Self {
        self.max_field = n;
        self
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn offset(&self) -> u64 {
        self.buf_start
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<Vec<Item>>, DumpError> {
        let now = now_ms();
        let mut spans = Vec::new();
        // End of the last complete record in `buf`.
        let mut end = 0usize;
        loop {
            let found = self
                .find_separators(end)
                .and_then(|whole| whole.then(|| self.span(end, now)).transpose());
            match found {
                Ok(Some(span)) => {
                    spans.push(span);
                    end = self.seps[2] + SEP.len();
                    self.nseps = 0;
                    if spans.len() >= BATCH_RECORDS || end >= BATCH_BYTES {
                        break;
                    }
                    continue;
                }
                Ok(None) => {}
                // Hand out the good records before the bad one first; the
                // state is left so that the next call finds the error again.
                Err(_) if !spans.is_empty() => break,
                Err(e) => return Err(e),
            }
            if !spans.is_empty() {
                break;
            }
            // No complete record buffered (end == 0 here).
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(DumpError::Truncated {
                    file: self.file.clone(),
                    offset: self.buf_start + self.buf.len() as u64,
                    inside: "legacy record (expected key✝✝payload✝✝ttl✝✝)",
                });
            }
            self.fill()?;
        }

        let chunk = self.buf.split_to(end).freeze();
        self.buf_start += end as u64;
        self.scan -= end;
        for s in &mut self.seps[..self.nseps] {
            *s -= end;
        }
        self.records += spans.len() as u64;
        Ok(Some(
            spans
                .into_iter()
                .map(|s| Item {
                    key: chunk.slice(s.key),
                    payload: chunk.slice(s.payload),
                    expire_at_ms: s.expire_at_ms,
                    page: Default::default(),
                })
                .collect(),
        ))
    }

    /// Look for the rest of the separators of the record starting at
    /// `record`; true once it has all three. Each field is checked against
    /// its limit as soon as its length is known, or known to be too long: a
    /// field on its way to a gigabyte fails at its limit, not at the end of
    /// the file. A field that fails is not recorded, so the error is found
    /// again by the next call.
    fn find_separators(&mut self, record: usize) -> Result<bool, DumpError> {
        while self.nseps < 3 {
            let start = match self.nseps {
                0 => record,
                n => self.seps[n - 1] + SEP.len(),
            };
            if let Some(i) = memmem::find(&self.buf[self.scan..], SEP) {
                self.check_field_len(start, self.scan + i - start)?;
                self.seps[self.nseps] = self.scan + i;
                self.nseps += 1;
                self.scan += i + SEP.len();
            } else {
                // A separator may straddle the end of the buffer; none starts
                // before `scan`, so the field is at least `scan - start` long.
                self.scan = self.scan.max(self.buf.len().saturating_sub(SEP.len() - 1));
                self.check_field_len(start, self.scan - start)?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The field being read (`self.nseps`), starting at `start`, is `len`
    /// bytes long or longer.
    fn check_field_len(&self, start: usize, len: usize) -> Result<(), DumpError> {
        let field = FIELDS[self.nseps];
        if field == "ttl" {
            if len > MAX_TTL_LEN {
                // The same bytes shown however the file was read.
                return Err(self.bad_ttl(start..start + MAX_TTL_LEN + 1));
            }
            return Ok(());
        }
        if len > self.max_field {
            return Err(DumpError::malformed(
                &self.file,
                self.buf_start + start as u64,
                format!(
                    "legacy {field} field is longer than the limit of {} bytes",
                    self.max_field
                ),
            ));
        }
        Ok(())
    }

    /// The record starting at `record`, all three separators found.
    fn span(&self, record: usize, now: u64) -> Result<Span, DumpError> {
        let [s0, s1, s2] = self.seps;
        let ttl = s1 + SEP.len()..s2;
        let expire_at_ms = match self.parse_ttl(ttl.clone())? {
            0 => 0,
            t if t < 0 => EXPIRED,
            t => now
                .checked_add(t.unsigned_abs())
                .filter(|&at| at <= MAX_EXPIRE_AT_MS)
                .ok_or_else(|| {
                    DumpError::malformed(
                        &self.file,
                        self.buf_start + ttl.start as u64,
                        format!("legacy ttl {t} puts the expiry beyond the latest RESTORE accepts ({MAX_EXPIRE_AT_MS})"),
                    )
                })?,
        };
        Ok(Span {
            key: record..s0,
            payload: s0 + SEP.len()..s1,
            expire_at_ms,
        })
    }

    /// The ttl field: optional '-', then decimal digits.
    fn parse_ttl(&self, range: Range<usize>) -> Result<i64, DumpError> {
        let field = &self.buf[range.clone()];
        let digits = field.strip_prefix(b"-").unwrap_or(field);
        let parsed = if field.len() <= MAX_TTL_LEN
            && !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
        {
            std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        } else {
            None
        };
        parsed.ok_or_else(|| self.bad_ttl(range))
    }

    /// A ttl field that is not a number, shown by `shown` (at most its first
    /// `MAX_TTL_LEN + 1` bytes).
    fn bad_ttl(&self, shown: Range<usize>) -> DumpError {
        DumpError::malformed(
            &self.file,
            self.buf_start + shown.start as u64,
            format!(
                "legacy ttl field {} is not decimal milliseconds",
                quote_key(&self.buf[shown])
            ),
        )
    }

    /// Read more bytes into `buf`; sets `eof` when there are none.
    fn fill(&mut self) -> Result<(), DumpError> {
        let old = self.buf.len();
        // One chunk at a time, whatever the record's size: the search
        // resumes at `scan`, so nothing is rescanned, and the buffer stays
        // within one chunk of the field limits.
        self.buf.resize(old + READ_CHUNK, 0);
        let res = loop {
            match self.r.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match res {
            Ok(n) => {
                self.buf.truncate(old + n);
                self.eof = n == 0;
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(old);
                Err(DumpError::io(
                    &self.file,
                    "read",
                    Some(self.buf_start + old as u64),
                    e,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{now_ms, DumpKind, DumpReader, DumpWriter, Format};
    use super::*;
    use bytes::Bytes;

    fn read(bytes: &[u8]) -> Result<Vec<Item>, DumpError> {
        let mut r = DumpReader::open(bytes, "old.rump")?;
        assert_eq!(r.kind(), DumpKind::Legacy);
        let mut all = Vec::new();
        while let Some(batch) = r.next_batch()? {
            all.extend(batch);
        }
        Ok(all)
    }

    /// A file as Go rump writes it, built byte by byte from the original
    /// format (not with our writer): ✝ is e2 9c 9d.
    fn go_fixture() -> Vec<u8> {
        let sep: &[u8] = &[0xe2, 0x9c, 0x9d, 0xe2, 0x9c, 0x9d];
        let mut f = Vec::new();
        for (key, value, ttl) in [
            (
                &b"user:1"[..],
                &b"\x00\x05hello\x0b\x00\x01\x02\x03\x04\x05\x06\x07\x08"[..],
                &b"0"[..],
            ),
            (b"session\r\n\x00x", b"", b"60000"),
            (b"gone", b"", b"-2"),
        ] {
            f.extend_from_slice(key);
            f.extend_from_slice(sep);
            f.extend_from_slice(value);
            f.extend_from_slice(sep);
            f.extend_from_slice(ttl);
            f.extend_from_slice(sep);
        }
        f
    }

    #[test]
    fn reads_a_file_in_the_go_tools_format() {
        let before = now_ms();
        let items = read(&go_fixture()).unwrap();
        let after = now_ms();
        assert_eq!(items.len(), 3);
        assert_eq!(&items[0].key[..], b"user:1");
        assert_eq!(
            &items[0].payload[..],
            b"\x00\x05hello\x0b\x00\x01\x02\x03\x04\x05\x06\x07\x08"
        );
        assert_eq!(items[0].expire_at_ms, 0);
        assert_eq!(&items[1].key[..], b"session\r\n\x00x");
        assert!(items[1].payload.is_empty());
        assert!((before + 60_000..=after + 60_000).contains(&items[1].expire_at_ms));
        assert_eq!(
            items[2].expire_at_ms, EXPIRED,
            "PTTL -2: already gone at dump time"
        );
    }

    /// Hands out its bytes at most `.1` at a time.
    struct Dribble<'a>(&'a [u8], usize);
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn reads_identically_whatever_the_read_sizes() {
        let f = go_fixture();
        let want: Vec<_> = read(&f)
            .unwrap()
            .into_iter()
            .map(|i| (i.key, i.payload))
            .collect();
        for step in 1..8 {
            let mut r = DumpReader::open(Dribble(&f, step), "old.rump").unwrap();
            let mut got = Vec::new();
            while let Some(b) = r.next_batch().unwrap() {
                got.extend(b.into_iter().map(|i| (i.key, i.payload)));
            }
            assert_eq!(got, want, "step {step}");
        }
    }

    #[test]
    fn write_then_read_round_trips() {
        let far = now_ms() + 3_600_000;
        let items = vec![
            Item {
                key: Bytes::from_static(b"a\r\nb\0"),
                payload: Bytes::from_static(b"\x00\xff\r\n"),
                expire_at_ms: 0,
                page: Default::default(),
            },
            Item {
                key: Bytes::from_static("✝x✝y".as_bytes()),
                payload: Bytes::new(),
                expire_at_ms: far,
                page: Default::default(),
            },
            Item {
                key: Bytes::new(),
                payload: Bytes::from(vec![7; 600_000]),
                expire_at_ms: 0,
                page: Default::default(),
            },
        ];
        let mut w =
            DumpWriter::new(Vec::new(), "old.rump", Format::Legacy, Default::default()).unwrap();
        w.write_batch(&items).unwrap();
        // Expired in flight: skipped and counted, never written as "0" (immortal).
        w.write(&Item {
            key: Bytes::from_static(b"late"),
            payload: Bytes::new(),
            expire_at_ms: 5,
            page: Default::default(),
        })
        .unwrap();
        let done = w.finish().unwrap();
        assert_eq!((done.records, done.skipped_expired), (3, 1));
        assert!(done.out.starts_with("a\r\nb\0✝✝".as_bytes()));
        assert!(done.out.ends_with("✝✝0✝✝".as_bytes()));
        let got = read(&done.out).unwrap();
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(&items) {
            assert_eq!((&g.key, &g.payload), (&w.key, &w.payload));
        }
        assert_eq!(got[0].expire_at_ms, 0);
        // Relative on disk, absolute again on read: within the test's runtime.
        assert!(got[1].expire_at_ms.abs_diff(far) < 5_000);
    }

    #[test]
    fn refuses_fields_the_format_cannot_hold() {
        let cases: [(&[u8], &[u8], &str); 4] = [
            (
                "k✝✝".as_bytes(),
                b"v",
                "its key contains the legacy separator",
            ),
            (
                b"k",
                "x✝✝y".as_bytes(),
                "its payload contains the legacy separator",
            ),
            ("tail✝".as_bytes(), b"v", "its key ends with \"✝\""),
            (b"\x00bin", "v✝".as_bytes(), "its payload ends with \"✝\""),
        ];
        for (key, payload, why) in cases {
            let mut w = DumpWriter::new(Vec::new(), "old.rump", Format::Legacy, Default::default())
                .unwrap();
            let item = Item {
                key: Bytes::copy_from_slice(key),
                payload: Bytes::copy_from_slice(payload),
                expire_at_ms: 0,
                page: Default::default(),
            };
            let e = w.write(&item).unwrap_err().to_string();
            assert!(
                e.starts_with("dump file \"old.rump\": cannot write key \""),
                "{e}"
            );
            assert!(e.contains(why), "{e}");
            assert!(
                w.finish().unwrap().out.is_empty(),
                "nothing of the key was written"
            );
        }
        let e = DumpWriter::new(Vec::new(), "o", Format::Legacy, Default::default())
            .unwrap()
            .write(&Item {
                key: Bytes::from_static(b"\x00\r\n\xe2\x9c\x9d\xe2\x9c\x9d"),
                payload: Bytes::new(),
                expire_at_ms: 0,
                page: Default::default(),
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("key \"\\x00\\r\\n\\xe2\\x9c\\x9d\\xe2\\x9c\\x9d\""),
            "{e}"
        );
    }

    #[test]
    fn truncation_inside_a_record_is_an_error() {
        let f = go_fixture();
        let boundaries: Vec<usize> = {
            let mut b = vec![0];
            let mut seps = memmem::find_iter(&f, SEP).map(|i| i + SEP.len());
            while let (Some(_), Some(_), Some(end)) = (seps.next(), seps.next(), seps.next()) {
                b.push(end);
            }
            b
        };
        for cut in 1..f.len() {
            let res = read(&f[..cut]);
            if boundaries.contains(&cut) {
                assert!(res.is_ok(), "cut at record boundary {cut}");
            } else {
                let e = res.unwrap_err().to_string();
                assert!(e.starts_with("dump file \"old.rump\": "), "{e}");
                assert!(e.contains("byte offset"), "{e}");
            }
        }
    }

    #[test]
    fn bad_ttl_fields_are_errors_with_offsets() {
        for ttl in [&b""[..], b"12a", b"1.5", b"99999999999999999999999", b"--1"] {
            let mut f = b"k\xe2\x9c\x9d\xe2\x9c\x9dv\xe2\x9c\x9d\xe2\x9c\x9d".to_vec();
            f.extend_from_slice(ttl);
            f.extend_from_slice(SEP);
            let e = read(&f).unwrap_err().to_string();
            assert!(
                e.contains("is not decimal milliseconds at byte offset 14"),
                "{e}"
            );
        }
    }

    /// Records read with a field limit of `cap` until the end or the first
    /// error, whatever the read sizes; each chunking must agree.
    fn read_capped(bytes: &[u8], cap: usize) -> (Vec<Item>, Option<String>) {
        let mut results = Vec::new();
        for step in [bytes.len().max(1), 7, 1000] {
            let mut r =
                LegacyReader::new(Dribble(bytes, step), "old.rump", b"").with_max_field(cap);
            let mut items = Vec::new();
            let err = loop {
                match r.next_batch() {
                    Ok(Some(b)) => items.extend(b),
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                }
            };
            assert_eq!(r.records(), items.len() as u64);
            results.push((items, err));
        }
        for other in &results[1..] {
            assert_eq!(
                (other.0.len(), &other.1),
                (results[0].0.len(), &results[0].1)
            );
        }
        results.swap_remove(0)
    }

    fn record(key: &[u8], payload: &[u8], ttl: &[u8]) -> Vec<u8> {
        [key, SEP, payload, SEP, ttl, SEP].concat()
    }

    #[test]
    fn field_limit_is_exact_and_earlier_records_survive_it() {
        const CAP: usize = 1024;
        let good = [record(b"a", b"1", b"0"), record(b"b", b"2", b"0")].concat();
        let at_limit = [good.clone(), record(&[b'k'; CAP], &[b'p'; CAP], b"0")].concat();
        let (items, err) = read_capped(&at_limit, CAP);
        assert_eq!((items.len(), err), (3, None));
        assert_eq!(items[2].key.len(), CAP);
        assert_eq!(items[2].payload.len(), CAP);

        let over = good.len();
        for (bytes, field, offset) in [
            // Over by one, separator and all: found complete.
            (
                [good.as_slice(), &record(&[b'k'; CAP + 1], b"p", b"0")].concat(),
                "key",
                over,
            ),
            (
                [good.as_slice(), &record(b"k", &[b'p'; CAP + 1], b"0")].concat(),
                "payload",
                over + 1 + SEP.len(),
            ),
            // No separator at all: found unfinished.
            ([good.as_slice(), &[b'k'; 5 * CAP]].concat(), "key", over),
        ] {
            let (items, err) = read_capped(&bytes, CAP);
            assert_eq!(
                items.len(),
                2,
                "the records before the long {field} are kept"
            );
            assert_eq!(
                err.as_deref(),
                Some(&*format!("dump file \"old.rump\": legacy {field} field is longer than the limit of {CAP} bytes at byte offset {offset}"))
            );
        }
        // A ttl field that will not end is cut off after MAX_TTL_LEN bytes.
        let bytes = [good.as_slice(), b"k", SEP, b"p", SEP, &[b'9'; 5000]].concat();
        let (items, err) = read_capped(&bytes, CAP);
        assert_eq!(items.len(), 2);
        let err = err.unwrap_or_default();
        assert!(err.contains("legacy ttl field \"99999"), "{err}");
        assert!(
            err.ends_with(&format!(
                " is not decimal milliseconds at byte offset {}",
                over + 2 + 2 * SEP.len()
            )),
            "{err}"
        );
        // The default is the format-wide limit.
        assert_eq!(
            LegacyReader::new(&b""[..], "t", b"").max_field,
            MAX_RECORD_LEN
        );
    }

    #[test]
    fn memory_stays_bounded_without_a_separator() {
        /// 10 MiB of one byte, counting what was handed out.
        struct Endless(usize, std::rc::Rc<std::cell::Cell<usize>>);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0);
                buf[..n].fill(b'x');
                self.0 -= n;
                self.1.set(self.1.get() + n);
                Ok(n)
            }
        }
        const CAP: usize = 1024;
        let served = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut r =
            LegacyReader::new(Endless(10 << 20, served.clone()), "big", b"").with_max_field(CAP);
        let e = r.next_batch().unwrap_err();
        assert!(
            e.to_string().contains(
                "legacy key field is longer than the limit of 1024 bytes at byte offset 0"
            ),
            "{e}"
        );
        let bound = CAP + SEP.len() + READ_CHUNK;
        assert!(r.buf.len() <= bound, "{} buffered", r.buf.len());
        assert!(
            served.get() <= bound,
            "{} bytes read from a 10 MiB stream",
            served.get()
        );
    }

    #[test]
    fn a_ttl_past_i64_max_is_an_error() {
        let ok = record(b"k", b"v", b"1000");
        let t = (MAX_EXPIRE_AT_MS - now_ms() + 60_000).to_string();
        let bytes = [ok.as_slice(), &record(b"k2", b"v", t.as_bytes())].concat();
        let (items, err) = read_capped(&bytes, MAX_RECORD_LEN);
        assert_eq!(items.len(), 1);
        let want = format!("legacy ttl {t} puts the expiry beyond the latest RESTORE accepts ({MAX_EXPIRE_AT_MS}) at byte offset {}", ok.len() + 2 + 2 * SEP.len() + 1);
        assert!(
            err.as_deref().is_some_and(|e| e.ends_with(&want)),
            "{err:?}"
        );
    }
}
