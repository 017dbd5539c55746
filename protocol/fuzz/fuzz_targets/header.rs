//! libFuzzer entry point for the `header` target; the body is `sluice_protocol_fuzz::header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_protocol_fuzz::header(data));
