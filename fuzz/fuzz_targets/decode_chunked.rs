//! Bytes fed in fuzzer-chosen pieces (a split pattern, then the stream) decode as when fed whole.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| resp::fuzzing::fuzz_chunked_raw(data));
