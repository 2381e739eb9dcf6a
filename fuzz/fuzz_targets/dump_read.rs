//! Arbitrary bytes as a dump file: the reader never panics and never hands out more than the input held.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rump::dump::fuzz_read(data));
