//! Property tests (redis-rs's split-anywhere property): any frames, encoded and
//! fed to the decoder whole, split at every offset, or in random chunks, decode
//! to the same frames with the same consumed byte counts. With the frame
//! limits set around a frame's own size, it decodes exactly when it fits them,
//! however it arrives.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use resp::fuzzing::shape;
use resp::{encode, encoded_len, Decoder, Error, Frame, Limits};

/// A simple/error line: any bytes but CR and LF, which RESP2 cannot carry there.
fn line() -> impl Strategy<Value = Bytes> {
    vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..24,
    )
    .prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line().prop_map(Frame::Simple),
        line().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(-2),
            Just(i64::MIN),
            Just(i64::MAX)
        ]
        .prop_map(Frame::Integer),
        // Bulks are binary: CR, LF and "\r\n" inside are data.
        vec(prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n')], 0..80)
            .prop_map(|v| Frame::Bulk(v.into())),
        Just(Frame::Null),
        Just(Frame::NullArray),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| vec(inner, 0..8).prop_map(Frame::Array))
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    for frame in frames {
        encode(frame, &mut bytes);
    }
    bytes.to_vec()
}

/// Feeds `data` in pieces of the given sizes (the rest in one piece), decoding
/// after each: the frames and, for each, the bytes it consumed.
fn decode_chunked(data: &[u8], sizes: &[usize]) -> (Vec<Frame>, Vec<usize>) {
    decode_chunked_with(Limits::default(), data, sizes)
        .unwrap_or_else(|(at, e)| panic!("valid stream failed at {at}: {e}"))
}

/// [`decode_chunked`] under `limits`: the first error, and how many bytes had
/// been fed when it came, instead of a panic.
fn decode_chunked_with(
    limits: Limits,
    data: &[u8],
    sizes: &[usize],
) -> Result<(Vec<Frame>, Vec<usize>), (usize, Error)> {
    let mut decoder = Decoder::with_limits(limits);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut consumed = Vec::new();
    let mut at = 0;
    let mut sizes = sizes.iter().copied();
    while at < data.len() {
        let end = sizes
            .next()
            .map_or(data.len(), |n| (at + n).min(data.len()));
        buf.extend_from_slice(&data[at..end]);
        at = end;
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    frames.push(frame);
                    consumed.push(before - buf.len());
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Err(e) => return Err((at, e)),
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok((frames, consumed))
}

/// The limits `frame_slack` bytes and `elements_slack` elements away from what
/// `frames` need at most (each frame on its own, not the stream).
fn limits_around(frames: &[Frame], frame_slack: i64, elements_slack: i64) -> Limits {
    let around = |n: usize, slack: i64| usize::try_from(n as i64 + slack).unwrap_or(0);
    let bytes = frames.iter().map(encoded_len).max().unwrap_or(0);
    let elements = frames.iter().map(|f| shape(f).1).max().unwrap_or(0);
    Limits {
        max_frame_bytes: around(bytes, frame_slack),
        max_elements: around(elements, elements_slack),
        ..Limits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_frame_decodes_whole_and_split_at_every_offset(frame in frame()) {
        let bytes = encode_all(std::slice::from_ref(&frame));
        prop_assert_eq!(bytes.len(), encoded_len(&frame));
        let want = (vec![frame.clone()], vec![bytes.len()]);
        prop_assert_eq!(&decode_chunked(&bytes, &[]), &want);
        for split in 1..bytes.len() {
            prop_assert_eq!(&decode_chunked(&bytes, &[split]), &want, "split {}", split);
        }
        // decode_raw hands back exactly the encoded bytes.
        let mut buf = BytesMut::from(&bytes[..]);
        let (got, raw) = Decoder::new().decode_raw(&mut buf).unwrap().unwrap();
        prop_assert_eq!(got, frame);
        prop_assert_eq!(&raw[..], &bytes[..]);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn one_frame_decodes_in_random_chunks(frame in frame(), sizes in vec(1usize..32, 0..64)) {
        let bytes = encode_all(std::slice::from_ref(&frame));
        let (frames, consumed) = decode_chunked(&bytes, &sizes);
        prop_assert_eq!(frames, vec![frame]);
        prop_assert_eq!(consumed, vec![bytes.len()]);
    }

    #[test]
    fn one_frame_decodes_exactly_when_it_fits_the_frame_limits(
        frame in frame(),
        frame_slack in -2i64..=2,
        elements_slack in -2i64..=2,
        sizes in vec(1usize..32, 0..64),
    ) {
        let bytes = encode_all(std::slice::from_ref(&frame));
        let limits = limits_around(std::slice::from_ref(&frame), frame_slack, elements_slack);
        let bytes_fit = bytes.len() <= limits.max_frame_bytes;
        let elements_fit = shape(&frame).1 <= limits.max_elements;
        let too_large = Error::FrameTooLarge { limit: limits.max_frame_bytes };
        let too_many = Error::TooManyElements { limit: limits.max_elements };
        let mut chunkings = vec![vec![], sizes, vec![1; bytes.len()]];
        chunkings.extend((1..bytes.len()).map(|split| vec![split]));
        for chunks in chunkings {
            let got = decode_chunked_with(limits, &bytes, &chunks);
            match (bytes_fit, elements_fit, got) {
                (true, true, Ok(got)) => {
                    prop_assert_eq!(got, (vec![frame.clone()], vec![bytes.len()]));
                }
                (false, true, Err((at, e))) => {
                    prop_assert_eq!(e, too_large.clone());
                    // Refused by the time the buffer holds the limit: at the
                    // latest when the piece that took it there arrived.
                    let boundary = chunks
                        .iter()
                        .scan(0, |fed, n| {
                            *fed += n;
                            Some(*fed)
                        })
                        .chain([bytes.len()])
                        .find(|&fed| fed >= limits.max_frame_bytes);
                    prop_assert!(Some(at) <= boundary, "refused at {} not {:?}", at, boundary);
                }
                (true, false, Err((_, e))) => prop_assert_eq!(e, too_many.clone()),
                (false, false, Err((_, e))) => {
                    prop_assert!(e == too_large || e == too_many, "{}", e);
                }
                (bytes_fit, elements_fit, got) => prop_assert!(
                    false,
                    "bytes fit {} elements fit {} under {:?}, {:?} chunks: {:?}",
                    bytes_fit, elements_fit, limits, chunks, got
                ),
            }
        }
    }

    #[test]
    fn a_pipelined_stream_decodes_the_same_however_it_arrives(
        frames in vec(frame(), 1..12),
        sizes in vec(1usize..48, 0..64),
    ) {
        let bytes = encode_all(&frames);
        let lens: Vec<usize> = frames.iter().map(encoded_len).collect();
        let want = (frames, lens);
        prop_assert_eq!(&decode_chunked(&bytes, &[]), &want);
        prop_assert_eq!(&decode_chunked(&bytes, &sizes), &want);
        // One byte at a time: the worst case for resumption.
        prop_assert_eq!(&decode_chunked(&bytes, &vec![1; bytes.len()]), &want);
        for split in 1..bytes.len() {
            prop_assert_eq!(&decode_chunked(&bytes, &[split]), &want, "split {}", split);
        }
        // The frame limits bound each frame, not the buffer: set to exactly
        // the largest frame's needs, the whole stream still decodes.
        let tight = limits_around(&want.0, 0, 0);
        prop_assert_eq!(&decode_chunked_with(tight, &bytes, &[]).ok(), &Some(want.clone()));
        prop_assert_eq!(&decode_chunked_with(tight, &bytes, &sizes).ok(), &Some(want));
    }
}
