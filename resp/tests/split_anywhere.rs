//! Property tests (redis-rs's split-anywhere property): any frames, encoded and
//! fed to the decoder whole, split at every offset, or in random chunks, decode
//! to the same frames with the same consumed byte counts.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use resp::{encode, encoded_len, Decoder, Frame};

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
    let mut decoder = Decoder::new();
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
                Err(e) => panic!("valid stream failed at {at}: {e}"),
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    (frames, consumed)
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
    }
}
