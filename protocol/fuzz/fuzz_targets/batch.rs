//! libFuzzer entry point for the `batch` target; the body is `sluice_protocol_fuzz::batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_protocol_fuzz::batch(data));
