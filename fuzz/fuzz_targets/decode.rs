#![no_main]
//! `cargo fuzz run --sanitizer none decode`: see herald_fuzz::decode.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::decode::run(data));
