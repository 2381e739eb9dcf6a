//! Fuzz harness logic, shared by `fuzz/` targets and the unit tests that replay
//! the committed corpus. Not part of the stable API.

use bytes::BytesMut;

use crate::{encode, encoded_len, Decoder, Frame, Limits};

/// Small limits so the fuzzer explores the limit paths, not memory.
fn fuzz_limits() -> Limits {
    Limits {
        max_bulk_len: 1 << 20,
        max_array_len: 1 << 16,
        max_depth: 32,
        max_line_len: 1 << 12,
    }
}

/// Decodes arbitrary bytes: never panics; every decoded frame consumed exactly
/// the bytes it re-encodes to.
pub fn fuzz_decode(data: &[u8]) {
    let mut decoder = Decoder::with_limits(fuzz_limits());
    let mut buf = BytesMut::from(data);
    let mut offset = 0;
    while let Ok(Some((frame, raw))) = decoder.decode_raw(&mut buf) {
        let mut again = BytesMut::new();
        encode(&frame, &mut again);
        assert_eq!(&again[..], &raw[..], "re-encoding differs at offset {offset}");
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
        assert_eq!(x.is_ok(), y.is_ok(), "decode and decode_raw disagree on errors");
        match (x, y) {
            (Ok(Some(f)), Ok(Some(g))) => assert_eq!(f, g),
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => break,
            (x, y) => panic!("decode {x:?} but decode_raw {y:?}"),
        }
        assert_eq!(a.len(), b.len());
    }
}

/// Feeds `data` in pieces whose sizes come from `splits`, and checks the frames
/// (and the first error) are those of one-shot decoding.
pub fn fuzz_chunked(data: &[u8], splits: &[u8]) {
    let whole = decode_all(data, &[]);
    let chunked = decode_all(data, splits);
    assert_eq!(whole, chunked);
}

fn decode_all(data: &[u8], splits: &[u8]) -> (Vec<Frame>, bool) {
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
                Err(_) => return (frames, true),
            }
        }
        if at == data.len() {
            return (frames, false);
        }
    }
}

/// Encodes a frame, decodes it back whole and split at every offset: the same
/// frame, consuming exactly the encoded length.
pub fn fuzz_roundtrip(frame: &Frame) {
    let mut bytes = BytesMut::new();
    encode(frame, &mut bytes);
    assert_eq!(bytes.len(), encoded_len(frame));
    let limits = Limits {
        max_depth: crate::MAX_DEPTH_HARD,
        ..Limits::default()
    };
    if depth(frame) > limits.max_depth {
        return;
    }
    let mut decoder = Decoder::with_limits(limits);
    let mut buf = bytes.clone();
    assert_eq!(decoder.decode(&mut buf), Ok(Some(frame.clone())));
    assert!(buf.is_empty());
    for split in 0..bytes.len() {
        let mut decoder = Decoder::with_limits(limits);
        let mut buf = BytesMut::from(&bytes[..split]);
        assert_eq!(decoder.decode(&mut buf), Ok(None), "split {split}");
        assert_eq!(buf.len(), split, "an incomplete decode leaves the buffer as it was");
        buf.extend_from_slice(&bytes[split..]);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(frame.clone())), "split {split}");
        assert!(buf.is_empty());
    }
}

fn depth(frame: &Frame) -> usize {
    match frame {
        Frame::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
