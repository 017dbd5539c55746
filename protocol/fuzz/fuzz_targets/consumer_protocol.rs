//! libFuzzer entry point for the `consumer_protocol` target; the body is
//! `sluice_protocol_fuzz::consumer_protocol`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_protocol_fuzz::consumer_protocol(data));
