//! Arbitrary bytes: never panics; whatever decodes re-encodes to the bytes it consumed.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| resp::fuzzing::fuzz_decode(data));
