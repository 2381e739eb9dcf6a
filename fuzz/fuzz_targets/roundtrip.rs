//! Any frame encodes, then decodes (whole and split anywhere) to itself.
#![no_main]
libfuzzer_sys::fuzz_target!(|frame: resp::Frame| resp::fuzzing::fuzz_roundtrip(&frame));
