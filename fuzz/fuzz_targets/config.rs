#![no_main]
//! `cargo fuzz run --sanitizer none config`: see herald_fuzz::config.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::config::run(data));
