//! rump's own dump format: a checksummed header, CRC32C-checked blocks of
//! length-prefixed binary-safe records, and an end marker that proves the
//! dump is complete. FORMAT.md at the repository root documents it byte by
//! byte; the constants below are the single source of truth for it.
//!
//! This file owns encoding and decoding only. It does not choose between
//! formats (mod.rs detects), does not open files (atomic.rs) and does not
//! decide what an expired key means (the restorer does).
//!
//! Why blocks: a reader verifies a whole block's checksum before handing any
//! of its records out, so a restore never writes a record from a damaged
//! block. Why the header is written lazily: the RDB version of the payloads
//! may only be known once the first `DUMP` reply arrives.

use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::mem;

use bytes::Bytes;
use crc32c::{crc32c, crc32c_append, crc32c_combine};

use super::{DumpError, DumpHeader, Written, MAX_EXPIRE_AT_MS, MAX_RECORD_LEN};
use crate::engine::item::Item;

/// First 8 bytes of every native dump. Like PNG's signature: the high-bit
/// first byte catches 7-bit transfers, `\r\n` catches line-ending conversion,
/// `0x1a` stops DOS `type`; "RUMP" makes it recognisable in a hex dump.
pub(crate) const MAGIC: [u8; 8] = [0x89, b'R', b'U', b'M', b'P', b'\r', b'\n', 0x1a];
/// The only format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// Header flags this build understands (none yet; bit 0 is reserved for
/// per-block compression). Unknown bits are an error, never ignored.
const KNOWN_FLAGS: u16 = 0;
/// Longest Redis version string in the header.
pub(crate) const MAX_VERSION_LEN: usize = 255;
/// Fixed part of the header after the magic: version, flags, started_at_ms,
/// db, rdb_version, version string length.
const HEADER_FIXED_LEN: usize = 2 + 2 + 8 + 4 + 2 + 2;

const TAG_BLOCK: u8 = b'B';
const TAG_END: u8 = b'E';
/// Tag, record count (u32), body length (u32), CRC32C of those 9 bytes.
const BLOCK_HEADER_LEN: usize = 1 + 4 + 4 + 4;
/// Key length (u32), payload length (u32), expire_at_ms (u64).
pub(crate) const RECORD_HEADER_LEN: usize = 4 + 4 + 8;
/// Tag, total record count (u64), stream CRC32C.
const END_LEN: usize = 1 + 8 + 4;

/// Target size of a block body. A block is closed when the next record would
/// push it past this; a record larger than this is a block on its own. 1 MiB
/// amortises the 17 bytes of block framing and keeps the memory a reader
/// holds per block small.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// Largest block body a reader accepts: one record with a key and a payload
/// both at [`MAX_RECORD_LEN`]. Fits in the u32 length field.
pub(crate) const MAX_BLOCK_LEN: usize = RECORD_HEADER_LEN + 2 * MAX_RECORD_LEN;
/// A reader never reserves more than this ahead of bytes actually read, so a
/// corrupt length cannot make it allocate gigabytes for a short file.
const READ_STEP: usize = DEFAULT_BLOCK_SIZE;

/// Writes the native format. Records are held (as `Bytes` clones: reference
/// counts, not copies) until a block is full, because the block header
/// carries the body length; then header, records and checksum go out through
/// a `BufWriter`, which passes payloads larger than its buffer straight to
/// the underlying writer.
pub(crate) struct NativeWriter<W: Write> {
    out: BufWriter<W>,
    file: String,
    /// `Some` until the header has been written.
    header: Option<DumpHeader>,
    pending: Vec<Item>,
    pending_len: usize,
    block_size: usize,
    offset: u64,
    stream_crc: u32,
    records: u64,
}

impl<W: Write> NativeWriter<W> {
    pub(crate) fn new(out: W, file: &str, header: DumpHeader) -> Result<Self, DumpError> {
        if header.redis_version.len() > MAX_VERSION_LEN {
            return Err(DumpError::TooLarge {
                file: file.to_owned(),
                offset: (MAGIC.len() + HEADER_FIXED_LEN - 2) as u64,
                what: "redis version string length",
                len: header.redis_version.len() as u64,
                limit: MAX_VERSION_LEN as u64,
            });
        }
        Ok(Self {
            out: BufWriter::with_capacity(64 * 1024, out),
            file: file.to_owned(),
            header: Some(header),
            pending: Vec::new(),
            pending_len: 0,
            block_size: DEFAULT_BLOCK_SIZE,
            offset: 0,
            stream_crc: 0,
            records: 0,
        })
    }

    pub(crate) fn set_block_size(&mut self, n: usize) {
        self.block_size = n.clamp(1, MAX_BLOCK_LEN);
    }

    pub(crate) fn write(&mut self, item: &Item) -> Result<(), DumpError> {
        super::check_record_len(&self.file, item)?;
        let len = RECORD_HEADER_LEN + item.key.len() + item.payload.len();
        if !self.pending.is_empty() && self.pending_len + len > self.block_size {
            self.flush_block()?;
        }
        self.pending.push(item.clone());
        self.pending_len += len;
        if self.pending_len >= self.block_size {
            self.flush_block()?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<Written<W>, DumpError> {
        self.flush_block()?;
        self.write_header()?;
        let mut end = [0u8; END_LEN];
        end[0] = TAG_END;
        end[1..9].copy_from_slice(&self.records.to_le_bytes());
        let crc = crc32c_append(self.stream_crc, &end[..9]);
        end[9..].copy_from_slice(&crc.to_le_bytes());
        self.put(&end)?;
        let offset = self.offset;
        let out = self.out.into_inner().map_err(|e| {
            let (e, out) = e.into_parts();
            super::write_error(&self.file, offset, &out, e)
        })?;
        Ok(Written {
            out,
            records: self.records,
            skipped_expired: 0,
            bytes: offset,
        })
    }

    /// Write bytes that are part of the stream checksum piece by piece.
    fn put(&mut self, bytes: &[u8]) -> Result<(), DumpError> {
        self.stream_crc = crc32c_append(self.stream_crc, bytes);
        self.put_raw(bytes)
    }

    /// Write bytes whose stream checksum the caller accounts for.
    fn put_raw(&mut self, bytes: &[u8]) -> Result<(), DumpError> {
        self.out
            .write_all(bytes)
            .map_err(|e| super::write_error(&self.file, self.offset, &self.out, e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn write_header(&mut self) -> Result<(), DumpError> {
        let Some(mut h) = self.header.take() else {
            return Ok(());
        };
        if h.rdb_version == 0 {
            h.rdb_version = self
                .pending
                .first()
                .and_then(|i| super::rdb_version_of(&i.payload))
                .unwrap_or(0);
        }
        let version = h.redis_version.as_bytes();
        let mut buf = Vec::with_capacity(MAGIC.len() + HEADER_FIXED_LEN + version.len() + 4);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&KNOWN_FLAGS.to_le_bytes());
        buf.extend_from_slice(&h.started_at_ms.to_le_bytes());
        buf.extend_from_slice(&h.db.to_le_bytes());
        buf.extend_from_slice(&h.rdb_version.to_le_bytes());
        // Checked in new(): at most MAX_VERSION_LEN.
        buf.extend_from_slice(&(version.len() as u16).to_le_bytes());
        buf.extend_from_slice(version);
        buf.extend_from_slice(&crc32c(&buf).to_le_bytes());
        self.put(&buf)
    }

    fn flush_block(&mut self) -> Result<(), DumpError> {
        self.write_header()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pending = mem::take(&mut self.pending);
        let count = pending.len();
        let body_len = mem::take(&mut self.pending_len);
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0] = TAG_BLOCK;
        // Both fit: block bodies are at most MAX_BLOCK_LEN (< 4 GiB) and each
        // record is at least RECORD_HEADER_LEN bytes.
        head[1..5].copy_from_slice(&(count as u32).to_le_bytes());
        head[5..9].copy_from_slice(&(body_len as u32).to_le_bytes());
        let head_crc = crc32c(&head[..9]);
        head[9..].copy_from_slice(&head_crc.to_le_bytes());
        self.put(&head)?;

        // The body's CRC is computed over the payloads in place, and folded
        // into the stream CRC with crc32c_combine instead of a second pass.
        let mut body_crc = 0u32;
        for item in pending.drain(..) {
            let mut rec = [0u8; RECORD_HEADER_LEN];
            rec[0..4].copy_from_slice(&(item.key.len() as u32).to_le_bytes());
            rec[4..8].copy_from_slice(&(item.payload.len() as u32).to_le_bytes());
            rec[8..16].copy_from_slice(&item.expire_at_ms.to_le_bytes());
            body_crc = crc32c_append(body_crc, &rec);
            body_crc = crc32c_append(body_crc, &item.key);
            body_crc = crc32c_append(body_crc, &item.payload);
            self.put_raw(&rec)?;
            self.put_raw(&item.key)?;
            self.put_raw(&item.payload)?;
        }
        self.pending = pending;
        self.stream_crc = crc32c_combine(self.stream_crc, body_crc, body_len);
        self.put(&body_crc.to_le_bytes())?;
        self.records += count as u64;
        Ok(())
    }
}

/// Reads the native format, one verified block at a time. The magic has
/// already been consumed by the detector in mod.rs.
pub(crate) struct NativeReader<R: Read> {
    r: R,
    file: String,
    header: DumpHeader,
    offset: u64,
    stream_crc: u32,
    records: u64,
    done: bool,
}

impl<R: Read> NativeReader<R> {
    /// Read and verify the header that follows the magic.
    pub(crate) fn open(r: R, file: &str) -> Result<Self, DumpError> {
        let mut this = Self {
            r,
            file: file.to_owned(),
            header: DumpHeader::default(),
            offset: MAGIC.len() as u64,
            stream_crc: crc32c(&MAGIC),
            records: 0,
            done: false,
        };
        let mut fixed = [0u8; HEADER_FIXED_LEN];
        this.read_exact(&mut fixed[..2], "header")?;
        let version = u16::from_le_bytes([fixed[0], fixed[1]]);
        if version != FORMAT_VERSION {
            // Other versions may lay the header out differently: stop here.
            return Err(DumpError::UnsupportedVersion {
                file: this.file,
                version,
            });
        }
        this.read_exact(&mut fixed[2..], "header")?;
        let flags = u16::from_le_bytes([fixed[2], fixed[3]]);
        let vlen = usize::from(u16::from_le_bytes([fixed[18], fixed[19]]));
        if vlen > MAX_VERSION_LEN {
            return Err(DumpError::TooLarge {
                file: this.file,
                offset: (MAGIC.len() + HEADER_FIXED_LEN - 2) as u64,
                what: "redis version string length",
                len: vlen as u64,
                limit: MAX_VERSION_LEN as u64,
            });
        }
        let mut version_str = vec![0u8; vlen];
        this.read_exact(&mut version_str, "header")?;
        let mut crc = [0u8; 4];
        this.read_exact(&mut crc, "header")?;
        let mut computed = crc32c_append(this.stream_crc, &fixed);
        computed = crc32c_append(computed, &version_str);
        if computed != u32::from_le_bytes(crc) {
            return Err(DumpError::ChecksumMismatch {
                file: this.file,
                offset: 0,
                what: "header",
            });
        }
        this.stream_crc = crc32c_append(computed, &crc);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DumpError::UnsupportedFlags {
                file: this.file,
                flags,
            });
        }
        let redis_version = String::from_utf8(version_str).map_err(|_| {
            DumpError::malformed(
                &this.file,
                (MAGIC.len() + HEADER_FIXED_LEN) as u64,
                "redis version is not utf-8",
            )
        })?;
        this.header = DumpHeader {
            redis_version,
            rdb_version: u16::from_le_bytes([fixed[16], fixed[17]]),
            db: u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]),
            started_at_ms: u64::from_le_bytes([
                fixed[4], fixed[5], fixed[6], fixed[7], fixed[8], fixed[9], fixed[10], fixed[11],
            ]),
        };
        Ok(this)
    }

    pub(crate) fn header(&self) -> &DumpHeader {
        &self.header
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The records of the next block, all verified; `None` after a valid end
    /// marker and end of file.
    pub(crate) fn next_batch(&mut self) -> Result<Option<Vec<Item>>, DumpError> {
        if self.done {
            return Ok(None);
        }
        let start = self.offset;
        let mut tag = [0u8; 1];
        if self.read_upto(&mut tag)? == 0 {
            return Err(DumpError::MissingEndMarker {
                file: self.file.clone(),
                offset: start,
            });
        }
        match tag[0] {
            TAG_BLOCK => self.read_block(start).map(Some),
            TAG_END => {
                self.read_end(start)?;
                self.done = true;
                Ok(None)
            }
            other => Err(DumpError::malformed(
                &self.file,
                start,
                format!("unknown tag {other:#04x} (expected block {TAG_BLOCK:#04x} or end marker {TAG_END:#04x})"),
            )),
        }
    }

    fn read_block(&mut self, start: u64) -> Result<Vec<Item>, DumpError> {
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0] = TAG_BLOCK;
        self.read_exact(&mut head[1..], "block header")?;
        if crc32c(&head[..9]) != u32::from_le_bytes([head[9], head[10], head[11], head[12]]) {
            return Err(DumpError::ChecksumMismatch {
                file: self.file.clone(),
                offset: start,
                what: "block header",
            });
        }
        let count = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        if len > MAX_BLOCK_LEN {
            return Err(DumpError::TooLarge {
                file: self.file.clone(),
                offset: start + 5,
                what: "block length",
                len: len as u64,
                limit: MAX_BLOCK_LEN as u64,
            });
        }
        if count == 0 || count > len / RECORD_HEADER_LEN {
            return Err(DumpError::malformed(
                &self.file,
                start + 1,
                format!("block claims {count} records in {len} bytes"),
            ));
        }
        let body_start = self.offset;
        let body = self.read_body(len)?;
        let mut crc = [0u8; 4];
        self.read_exact(&mut crc, "block checksum")?;
        let body_crc = crc32c(&body);
        if body_crc != u32::from_le_bytes(crc) {
            return Err(DumpError::ChecksumMismatch {
                file: self.file.clone(),
                offset: start,
                what: "block",
            });
        }
        self.stream_crc = crc32c_append(self.stream_crc, &head);
        self.stream_crc = crc32c_combine(self.stream_crc, body_crc, len);
        self.stream_crc = crc32c_append(self.stream_crc, &crc);

        // The checksum matched, so these lengths are what the writer wrote;
        // the checks below still guard against a buggy or hostile writer.
        let body = Bytes::from(body);
        let mut items = Vec::with_capacity(count);
        let mut pos = 0usize;
        for _ in 0..count {
            let at = body_start + pos as u64;
            let Some(rec) = body.get(pos..pos + RECORD_HEADER_LEN) else {
                return Err(DumpError::malformed(
                    &self.file,
                    at,
                    "record header beyond the end of the block",
                ));
            };
            let klen = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
            let plen = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]) as usize;
            let expire_at_ms = u64::from_le_bytes([
                rec[8], rec[9], rec[10], rec[11], rec[12], rec[13], rec[14], rec[15],
            ]);
            if expire_at_ms > MAX_EXPIRE_AT_MS {
                return Err(DumpError::malformed(
                    &self.file,
                    at + 8,
                    format!(
                        "record {} has expiry time {expire_at_ms}, beyond the latest RESTORE accepts ({MAX_EXPIRE_AT_MS})",
                        self.records + items.len() as u64 + 1
                    ),
                ));
            }
            for (what, n, field_at) in [("key length", klen, at), ("payload length", plen, at + 4)]
            {
                if n > MAX_RECORD_LEN {
                    return Err(DumpError::TooLarge {
                        file: self.file.clone(),
                        offset: field_at,
                        what,
                        len: n as u64,
                        limit: MAX_RECORD_LEN as u64,
                    });
                }
            }
            let key_start = pos + RECORD_HEADER_LEN;
            let end = key_start + klen + plen;
            if end > len {
                return Err(DumpError::malformed(
                    &self.file,
                    at,
                    "record length beyond the end of the block",
                ));
            }
            items.push(Item {
                key: body.slice(key_start..key_start + klen),
                payload: body.slice(key_start + klen..end),
                expire_at_ms,
                page: Default::default(),
            });
            pos = end;
        }
        if pos != len {
            return Err(DumpError::malformed(
                &self.file,
                body_start + pos as u64,
                format!("{} bytes after the block's last record", len - pos),
            ));
        }
        self.records += count as u64;
        Ok(items)
    }

    fn read_end(&mut self, start: u64) -> Result<(), DumpError> {
        let mut end = [0u8; END_LEN];
        end[0] = TAG_END;
        self.read_exact(&mut end[1..], "end marker")?;
        let computed = crc32c_append(self.stream_crc, &end[..9]);
        if computed != u32::from_le_bytes([end[9], end[10], end[11], end[12]]) {
            return Err(DumpError::ChecksumMismatch {
                file: self.file.clone(),
                offset: start,
                what: "end marker (whole-stream checksum)",
            });
        }
        let count = u64::from_le_bytes([
            end[1], end[2], end[3], end[4], end[5], end[6], end[7], end[8],
        ]);
        if count != self.records {
            return Err(DumpError::malformed(
                &self.file,
                start,
                format!(
                    "end marker counts {count} records but the file holds {}",
                    self.records
                ),
            ));
        }
        let mut extra = [0u8; 1];
        if self.read_upto(&mut extra)? != 0 {
            return Err(DumpError::TrailingData {
                file: self.file.clone(),
                offset: self.offset - 1,
            });
        }
        Ok(())
    }

    /// Read a block body of `len` bytes (bounded by MAX_BLOCK_LEN), growing
    /// the buffer at most READ_STEP ahead of the bytes actually received.
    fn read_body(&mut self, len: usize) -> Result<Vec<u8>, DumpError> {
        let mut body = Vec::with_capacity(len.min(READ_STEP));
        while body.len() < len {
            if body.len() == body.capacity() {
                body.reserve_exact((len - body.len()).min(body.len().max(READ_STEP)));
            }
            let room = (body.capacity() - body.len()).min(len - body.len());
            let before = body.len();
            match (&mut self.r).take(room as u64).read_to_end(&mut body) {
                Ok(0) => {
                    return Err(DumpError::Truncated {
                        file: self.file.clone(),
                        offset: self.offset,
                        inside: "block body",
                    })
                }
                Ok(n) => self.offset += n as u64,
                Err(e) => {
                    self.offset += (body.len() - before) as u64;
                    return Err(DumpError::io(&self.file, "read", Some(self.offset), e));
                }
            }
        }
        Ok(body)
    }

    fn read_exact(&mut self, buf: &mut [u8], inside: &'static str) -> Result<(), DumpError> {
        if self.read_upto(buf)? < buf.len() {
            return Err(DumpError::Truncated {
                file: self.file.clone(),
                offset: self.offset,
                inside,
            });
        }
        Ok(())
    }

    /// Fill `buf` unless the file ends first; returns the bytes read.
    fn read_upto(&mut self, buf: &mut [u8]) -> Result<usize, DumpError> {
        let n = read_full(&mut self.r, buf)
            .map_err(|(n, e)| DumpError::io(&self.file, "read", Some(self.offset + n as u64), e))?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Read until `buf` is full or end of file, retrying `Interrupted`. On error,
/// also returns how many bytes had been read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, (usize, io::Error)> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err((n, e)),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::{DumpKind, DumpReader, DumpWriter, Format};
    use super::*;

    fn item(key: &[u8], payload: &[u8], expire_at_ms: u64) -> Item {
        Item {
            key: Bytes::copy_from_slice(key),
            payload: Bytes::copy_from_slice(payload),
            expire_at_ms,
            page: Default::default(),
        }
    }

    fn header() -> DumpHeader {
        DumpHeader {
            redis_version: "7.2.4".into(),
            rdb_version: 11,
            db: 3,
            started_at_ms: 1_700_000_000_123,
        }
    }

    /// Binary keys (CRLF, NUL, the legacy separator), empty values, TTLs.
    fn sample(n: usize) -> Vec<Item> {
        let mut v = vec![
            item(b"a\r\nb", b"\x00\x01payload\r\n", 0),
            item(b"\0", b"", 1_900_000_000_000),
            item("k✝✝v✝".as_bytes(), "✝✝".as_bytes(), MAX_EXPIRE_AT_MS),
            item(b"", b"empty key", 1),
        ];
        for i in 0..n {
            v.push(item(
                format!("key:{i}").as_bytes(),
                &vec![i as u8; i % 300],
                (i as u64) * 1000,
            ));
        }
        v
    }

    fn write(items: &[Item], block_size: usize) -> Vec<u8> {
        let mut w = DumpWriter::new(Vec::new(), "t.rump", Format::Native, header())
            .unwrap()
            .block_size(block_size);
        w.write_batch(items).unwrap();
        let done = w.finish().unwrap();
        assert_eq!(done.records, items.len() as u64);
        assert_eq!(done.bytes, done.out.len() as u64);
        done.out
    }

    /// All items, or the first error; also the batch sizes.
    fn read(bytes: &[u8]) -> Result<(Vec<Item>, Vec<usize>), DumpError> {
        let mut r = DumpReader::open(bytes, "t.rump")?;
        let (mut all, mut sizes) = (Vec::new(), Vec::new());
        while let Some(batch) = r.next_batch()? {
            sizes.push(batch.len());
            all.extend(batch);
        }
        assert_eq!(r.records(), all.len() as u64);
        Ok((all, sizes))
    }

    #[test]
    fn round_trip_of_many_binary_items_across_blocks() {
        let items = sample(2000);
        let bytes = write(&items, 4096);
        let mut r = DumpReader::open(&bytes[..], "t.rump").unwrap();
        assert_eq!(r.kind(), DumpKind::Native);
        assert_eq!(r.header(), Some(&header()));
        let mut got = Vec::new();
        let mut blocks = 0;
        while let Some(batch) = r.next_batch().unwrap() {
            assert!(!batch.is_empty());
            blocks += 1;
            got.extend(batch);
        }
        assert_eq!(got, items);
        assert!(blocks > 10, "{blocks}");
        assert_eq!(r.next_batch().unwrap(), None, "stays at end");
    }

    #[test]
    fn items_are_slices_of_the_block_buffer() {
        let bytes = write(&sample(50), DEFAULT_BLOCK_SIZE);
        let (items, sizes) = read(&bytes).unwrap();
        assert_eq!(sizes.len(), 1);
        let base = items[0].key.as_ptr() as usize;
        let span = bytes.len();
        for i in &items {
            for p in [i.key.as_ptr() as usize, i.payload.as_ptr() as usize] {
                assert!(p >= base && p <= base + span, "not a slice of the block");
            }
        }
    }

    #[test]
    fn checksum_is_crc32c_as_format_md_says() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn empty_native_dump_has_header_and_end_marker() {
        let bytes = write(&[], DEFAULT_BLOCK_SIZE);
        assert_eq!(bytes.len(), 8 + HEADER_FIXED_LEN + 5 + 4 + END_LEN);
        let (items, sizes) = read(&bytes).unwrap();
        assert!(items.is_empty() && sizes.is_empty());
    }

    #[test]
    fn rdb_version_is_taken_from_the_first_payload_when_unknown() {
        let payload = [0u8, 1, 2, 12, 0, 9, 9, 9, 9, 9, 9, 9, 9];
        let mut w =
            DumpWriter::new(Vec::new(), "t", Format::Native, DumpHeader::default()).unwrap();
        w.write(&item(b"k", &payload, 0)).unwrap();
        let out = w.finish().unwrap().out;
        let r = DumpReader::open(&out[..], "t").unwrap();
        assert_eq!(r.header().map(|h| h.rdb_version), Some(12));
    }

    #[test]
    fn block_boundaries() {
        let block = 64;
        // Exactly filling a block: 16 + 8 + 40 = 64.
        let exact = item(b"12345678", &[7; 40], 5);
        // One byte more than a block, on its own.
        let big = item(b"12345678", &[8; 41], 0);
        let small = item(b"s", b"p", 0);
        let items = vec![
            small.clone(),
            exact.clone(),
            exact,
            big.clone(),
            small.clone(),
            small,
            big,
        ];
        let bytes = write(&items, block);
        let (got, sizes) = read(&bytes).unwrap();
        assert_eq!(got, items);
        // small | exact | exact | big | small small | big
        assert_eq!(sizes, vec![1, 1, 1, 1, 2, 1]);
        // A record far larger than the default block is one block.
        let huge = item(b"huge", &vec![1; 3 * DEFAULT_BLOCK_SIZE], 0);
        let bytes = write(
            &[item(b"a", b"b", 0), huge.clone(), item(b"c", b"d", 0)],
            DEFAULT_BLOCK_SIZE,
        );
        assert_eq!(read(&bytes).unwrap().1, vec![1, 1, 1]);
        assert_eq!(read(&bytes).unwrap().0[1], huge);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let bytes = write(&sample(20), 200);
        for cut in 1..bytes.len() {
            match read(&bytes[..cut]) {
                Ok((items, _)) => panic!("cut at {cut} read {} items without error", items.len()),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("dump file \"t.rump\": "), "{msg}");
                    assert!(msg.contains("byte offset"), "{msg}");
                }
            }
        }
        let e = read(&bytes[..bytes.len() - END_LEN]).unwrap_err();
        assert!(matches!(e, DumpError::MissingEndMarker { .. }), "{e}");
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = write(&sample(6), 64);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(read(&damaged).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn block_checksum_error_names_the_block_offset() {
        let bytes = write(&sample(6), 64);
        let header_len = 8 + HEADER_FIXED_LEN + 5 + 4;
        // First block's body starts after its 13-byte header.
        let mut damaged = bytes.clone();
        damaged[header_len + BLOCK_HEADER_LEN + 20] ^= 0x10;
        let e = read(&damaged).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("dump file \"t.rump\": checksum mismatch in block at byte offset {header_len}")
        );
        let mut damaged = bytes;
        damaged[header_len + 2] ^= 0x01;
        assert!(matches!(
            read(&damaged).unwrap_err(),
            DumpError::ChecksumMismatch {
                what: "block header",
                ..
            }
        ));
    }

    #[test]
    fn random_multi_bit_damage_is_detected() {
        let bytes = write(&sample(300), 1024);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            let mut damaged = bytes.clone();
            for _ in 0..1 + seed % 4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % damaged.len() as u64) as usize;
                damaged[at] ^= 1 << (seed % 8);
            }
            if damaged != bytes {
                assert!(read(&damaged).is_err());
            }
        }
    }

    #[test]
    fn wrong_magic_unknown_version_flags_and_trailing_data() {
        let bytes = write(&sample(1), DEFAULT_BLOCK_SIZE);
        let mut m = bytes.clone();
        m[5] = b'\n'; // \r\n -> \n\n, as a text-mode transfer might.
        assert_eq!(read(&m).unwrap_err().to_string(), "dump file \"t.rump\": bad magic number at byte offset 0: damaged native dump (converted as text?)");
        let mut v = bytes.clone();
        v[8] = 2;
        let e = read(&v).unwrap_err();
        assert!(
            matches!(e, DumpError::UnsupportedVersion { version: 2, .. }),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("unsupported format version 2 at byte offset 8"),
            "{e}"
        );
        // Flags with a valid header checksum: rejected, not ignored.
        let mut f = bytes.clone();
        f[10] = 1;
        let hlen = 8 + HEADER_FIXED_LEN + 5;
        let crc = crc32c(&f[..hlen]);
        f[hlen..hlen + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            read(&f).unwrap_err(),
            DumpError::UnsupportedFlags { flags: 1, .. }
        ));
        let mut t = bytes.clone();
        t.push(0);
        let e = read(&t).unwrap_err();
        assert!(
            matches!(e, DumpError::TrailingData { offset, .. } if offset == bytes.len() as u64),
            "{e}"
        );
        for n in 1..8 {
            assert!(matches!(
                read(&MAGIC[..n]).unwrap_err(),
                DumpError::Truncated { .. }
            ));
        }
    }

    /// Build a block by hand whose checksums are right but whose record
    /// lengths lie: the reader must refuse, not slice out of bounds.
    fn forged_block(count: u32, body: &[u8]) -> Vec<u8> {
        let mut out = write(&[], DEFAULT_BLOCK_SIZE);
        out.truncate(out.len() - END_LEN);
        let mut head = vec![TAG_BLOCK];
        head.extend_from_slice(&count.to_le_bytes());
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let crc = crc32c(&head);
        head.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32c(body).to_le_bytes());
        out
    }

    fn record(klen: u32, plen: u32, data: &[u8]) -> Vec<u8> {
        record_expiring(klen, plen, 0, data)
    }

    fn record_expiring(klen: u32, plen: u32, expire_at_ms: u64, data: &[u8]) -> Vec<u8> {
        let mut r = klen.to_le_bytes().to_vec();
        r.extend_from_slice(&plen.to_le_bytes());
        r.extend_from_slice(&expire_at_ms.to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn expiry_beyond_i64_max_is_rejected_naming_record_and_offset() {
        // At the limit: written and read as is.
        let at_limit = write(&[item(b"k", b"v", MAX_EXPIRE_AT_MS)], DEFAULT_BLOCK_SIZE);
        assert_eq!(read(&at_limit).unwrap().0[0].expire_at_ms, i64::MAX as u64);
        // One past it, in the second record: RESTORE would see a negative ttl.
        let mut body = record(1, 1, b"kv");
        body.extend(record_expiring(1, 1, MAX_EXPIRE_AT_MS + 1, b"kv"));
        let bytes = forged_block(2, &body);
        let at = bytes.len() - 4 - 18 + 8;
        let e = read(&bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("dump file \"t.rump\": record 2 has expiry time 9223372036854775808, beyond the latest RESTORE accepts (9223372036854775807) at byte offset {at}")
        );
    }

    #[test]
    fn lengths_are_checked_against_the_block_and_the_limit() {
        let e = read(&forged_block(1, &record(4, 10, b"keyvalue"))).unwrap_err();
        assert!(
            e.to_string()
                .contains("record length beyond the end of the block"),
            "{e}"
        );
        let e = read(&forged_block(1, &record(u32::MAX, 0, b""))).unwrap_err();
        assert!(
            matches!(
                e,
                DumpError::TooLarge {
                    what: "key length",
                    ..
                }
            ),
            "{e}"
        );
        let mut two = record(1, 1, b"kv");
        two.extend(record(1, 1, b"kv"));
        let e = read(&forged_block(1, &two)).unwrap_err();
        assert!(
            e.to_string()
                .contains("bytes after the block's last record"),
            "{e}"
        );
        let e = read(&forged_block(5, &record(1, 1, b"kv"))).unwrap_err();
        assert!(
            e.to_string().contains("block claims 5 records in 18 bytes"),
            "{e}"
        );
        // A block header claiming 4 GiB on a short file: rejected or reported
        // truncated without reserving gigabytes first.
        let mut huge = forged_block(1, &record(1, 1, b"kv"));
        let at = huge.len() - 4 - 18 - 13;
        let mut head = vec![TAG_BLOCK, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x3f];
        let crc = crc32c(&head);
        head.extend_from_slice(&crc.to_le_bytes());
        huge[at..at + 13].copy_from_slice(&head);
        let e = read(&huge).unwrap_err();
        assert!(
            matches!(
                e,
                DumpError::Truncated {
                    inside: "block body",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn end_marker_count_must_match() {
        let mut bytes = write(&sample(2), DEFAULT_BLOCK_SIZE);
        let end = bytes.len() - END_LEN;
        bytes[end + 1] += 1;
        let crc = crc32c(&bytes[..end + 9]);
        bytes[end + 9..].copy_from_slice(&crc.to_le_bytes());
        let e = read(&bytes).unwrap_err();
        assert!(
            e.to_string()
                .contains("end marker counts 7 records but the file holds 6"),
            "{e}"
        );
    }
}
