//! libFuzzer entry point for the `frame` target; the body is `sluice_protocol_fuzz::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_protocol_fuzz::frame(data));
