#![no_main]
//! `cargo fuzz run --sanitizer none http_body`: see herald_fuzz::http_body.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::http_body::run(data));
