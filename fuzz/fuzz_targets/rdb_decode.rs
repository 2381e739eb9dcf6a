//! Arbitrary bytes as a DUMP payload (and sealed with a valid CRC): never panics; whatever decodes re-encodes for every target and decodes back equal.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rdb::fuzzing::fuzz_decode(data));
