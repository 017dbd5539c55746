//! libFuzzer entry point for the `request` target; the body is `sluice_protocol_fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_protocol_fuzz::request(data));
