//! Fuzz harness logic, shared by `fuzz/` targets and the unit tests that replay
//! the committed corpus. Not part of the stable API.

use bytes::BytesMut;

use crate::{bulk_header, encode, encoded_len, Decoder, Frame, Limits};

/// Small limits so the fuzzer explores the limit paths, not memory. The frame
/// and element limits sit within reach of libFuzzer's default 4 KiB inputs.
fn fuzz_limits() -> Limits {
    Limits {
        max_bulk_len: 1 << 20,
        max_array_len: 1 << 16,
        max_depth: 32,
        max_line_len: 1 << 12,
        max_frame_bytes: 1 << 11,
        max_elements: 1 << 8,
    }
}

/// Decodes arbitrary bytes: never panics; every decoded frame consumed exactly
/// the bytes it re-encodes to, and keeps within the frame limits.
pub fn fuzz_decode(data: &[u8]) {
    let limits = fuzz_limits();
    let mut decoder = Decoder::with_limits(limits);
    let mut buf = BytesMut::from(data);
    let mut offset = 0;
    while let Ok(Some((frame, raw))) = decoder.decode_raw(&mut buf) {
        assert!(
            raw.len() <= limits.max_frame_bytes,
            "frame of {} bytes",
            raw.len()
        );
        assert!(shape(&frame).1 <= limits.max_elements);
        if let Some((header, len)) = bulk_header(&raw) {
            assert_eq!(&raw[..header], format!("${len}\r\n").as_bytes());
            assert_eq!(raw.len() as u64, header as u64 + len + 2);
        }
        let mut again = BytesMut::new();
        encode(&frame, &mut again);
        assert_eq!(
            &again[..],
            &raw[..],
            "re-encoding differs at offset {offset}"
        );
        assert_eq!(encoded_len(&frame), raw.len());
        assert_eq!(&data[offset..offset + raw.len()], &raw[..]);
        offset += raw.len();
    }
    // The plain decoder must agree with the raw one, frame for frame.
    let mut plain = Decoder::with_limits(fuzz_limits());
    let mut raw_decoder = Decoder::with_limits(fuzz_limits());
    let mut a = BytesMut::from(data);
    let mut b = BytesMut::from(data);
    loop {
        let x = plain.decode(&mut a);
        let y = raw_decoder.decode_raw(&mut b).map(|o| o.map(|(f, _)| f));
        assert_eq!(
            x.is_ok(),
            y.is_ok(),
            "decode and decode_raw disagree on errors"
        );
        match (x, y) {
            (Ok(Some(f)), Ok(Some(g))) => assert_eq!(f, g),
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => break,
            (x, y) => panic!("decode {x:?} but decode_raw {y:?}"),
        }
        assert_eq!(a.len(), b.len());
    }
}

/// Feeds `data` in pieces whose sizes come from `splits`, and checks the frames,
/// the bytes left over and the first error are those of one-shot decoding.
pub fn fuzz_chunked(data: &[u8], splits: &[u8]) {
    let whole = decode_all(data, &[]);
    let chunked = decode_all(data, splits);
    assert_eq!(whole, chunked);
}

/// [`fuzz_chunked`] over one flat input, so seeds are plain files: the first
/// byte `k` (mod 64) counts the split bytes that follow, the rest is the stream.
pub fn fuzz_chunked_raw(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let (splits, stream) = rest.split_at(usize::from(k % 64).min(rest.len()));
    fuzz_chunked(stream, splits);
}

/// Decodes `data` fed in pieces of `splits[i] + 1` bytes (whole when `splits` is
/// empty): the frames, the bytes left undecoded, and whether it ended in error.
fn decode_all(data: &[u8], splits: &[u8]) -> (Vec<Frame>, usize, bool) {
    let mut decoder = Decoder::with_limits(fuzz_limits());
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut sizes = splits.iter().map(|&s| usize::from(s) + 1);
    loop {
        let step = if splits.is_empty() {
            data.len() - at
        } else {
            sizes.next().unwrap_or(data.len() - at)
        };
        let end = (at + step).min(data.len());
        buf.extend_from_slice(&data[at..end]);
        at = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, buf.len() + data.len() - at, true),
            }
        }
        if at == data.len() {
            return (frames, buf.len(), false);
        }
    }
}

/// Encodes a frame, decodes it back whole and split at every offset: the same
/// frame, consuming exactly the encoded length.
///
/// Frames RESP2 cannot carry are skipped: a `Simple` or `Error` containing CR
/// or LF (`arbitrary` or a caller may build one; it would encode to two lines),
/// and nesting deeper than [`MAX_DEPTH_HARD`](crate::MAX_DEPTH_HARD).
pub fn fuzz_roundtrip(frame: &Frame) {
    let limits = Limits {
        max_depth: crate::MAX_DEPTH_HARD,
        ..Limits::default()
    };
    if shape(frame).0 > limits.max_depth || !encodable(frame) {
        return;
    }
    let mut bytes = BytesMut::new();
    encode(frame, &mut bytes);
    assert_eq!(bytes.len(), encoded_len(frame));
    let mut decoder = Decoder::with_limits(limits);
    let mut buf = bytes.clone();
    assert_eq!(decoder.decode(&mut buf), Ok(Some(frame.clone())));
    assert!(buf.is_empty());
    for split in 0..bytes.len() {
        let mut decoder = Decoder::with_limits(limits);
        let mut buf = BytesMut::from(&bytes[..split]);
        assert_eq!(decoder.decode(&mut buf), Ok(None), "split {split}");
        assert_eq!(
            buf.len(),
            split,
            "an incomplete decode leaves the buffer as it was"
        );
        buf.extend_from_slice(&bytes[split..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(frame.clone())),
            "split {split}"
        );
        assert!(buf.is_empty());
    }
}

/// True unless a `Simple` or `Error` line (at any depth) holds CR or LF.
fn encodable(frame: &Frame) -> bool {
    match frame {
        Frame::Simple(s) | Frame::Error(s) => !s.iter().any(|&b| b == b'\r' || b == b'\n'),
        Frame::Array(items) => items.iter().all(encodable),
        _ => true,
    }
}

/// Array nesting of `frame` and the elements of all its arrays (what
/// [`Limits::max_depth`] and [`Limits::max_elements`] count); iterative, so a
/// hostile frame cannot overflow the stack before the depth check rejects it.
pub fn shape(frame: &Frame) -> (usize, usize) {
    let mut deepest = 0;
    let mut elements = 0;
    let mut stack = vec![(frame, 0)];
    while let Some((frame, level)) = stack.pop() {
        if let Frame::Array(items) = frame {
            deepest = deepest.max(level + 1);
            elements += items.len();
            stack.extend(items.iter().map(|item| (item, level + 1)));
        }
    }
    (deepest, elements)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// The committed seeds of one fuzz target (`fuzz/corpus/<target>/`), plus
    /// whatever a local fuzz run grew there.
    fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        files
            .into_iter()
            .map(|path| {
                let data = std::fs::read(&path).expect("corpus file");
                (path, data)
            })
            .collect()
    }

    /// The frame the `roundtrip` target builds from `data`.
    fn arbitrary_frame(data: &[u8]) -> Option<Frame> {
        use arbitrary::{Arbitrary, Unstructured};
        Frame::arbitrary(&mut Unstructured::new(data)).ok()
    }

    #[test]
    fn decode_corpus_replays() {
        for (path, data) in corpus("decode") {
            eprintln!("{}", path.display());
            fuzz_decode(&data);
            fuzz_chunked(&data, &[0]);
        }
    }

    #[test]
    fn decode_chunked_corpus_replays() {
        for (path, data) in corpus("decode_chunked") {
            eprintln!("{}", path.display());
            fuzz_chunked_raw(&data);
        }
    }

    #[test]
    fn roundtrip_corpus_replays() {
        for (path, data) in corpus("roundtrip") {
            eprintln!("{}", path.display());
            if let Some(frame) = arbitrary_frame(&data) {
                fuzz_roundtrip(&frame);
            }
        }
    }

    /// The `roundtrip` seeds cover every frame type, so a fuzz run starts from
    /// all of them.
    #[test]
    fn roundtrip_seeds_cover_every_frame_type() {
        let frames: Vec<Frame> = corpus("roundtrip")
            .iter()
            .filter(|(path, _)| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            })
            .filter_map(|(_, data)| arbitrary_frame(data))
            .collect();
        let kinds: [fn(&Frame) -> bool; 7] = [
            |f| matches!(f, Frame::Simple(s) if !s.is_empty()),
            |f| matches!(f, Frame::Error(s) if !s.is_empty()),
            |f| matches!(f, Frame::Integer(n) if *n < 0),
            |f| matches!(f, Frame::Bulk(b) if !b.is_empty()),
            |f| matches!(f, Frame::Null),
            |f| matches!(f, Frame::NullArray),
            |f| matches!(f, Frame::Array(items) if !items.is_empty()),
        ];
        for (i, kind) in kinds.iter().enumerate() {
            assert!(frames.iter().any(kind), "no seed for kind {i}: {frames:?}");
        }
    }

    #[test]
    fn roundtrip_skips_frames_resp2_cannot_carry() {
        fuzz_roundtrip(&Frame::Simple("a\r\nb".into()));
        fuzz_roundtrip(&Frame::Array(vec![Frame::Error("\n".into())]));
        let mut deep = Frame::Null;
        for _ in 0..crate::MAX_DEPTH_HARD + 1 {
            deep = Frame::Array(vec![deep]);
        }
        fuzz_roundtrip(&deep);
    }

    #[test]
    fn arbitrary_frames_never_hold_cr_or_lf_in_lines() {
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..256 {
            if let Some(frame) = arbitrary_frame(&noise[start..]) {
                assert!(encodable(&frame), "{frame:?}");
                assert!(shape(&frame).0 <= crate::MAX_DEPTH);
            }
        }
    }
}
