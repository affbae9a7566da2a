#![no_main]
//! `cargo fuzz run --sanitizer none render`: see herald_fuzz::render.

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald_fuzz::render::run(data));
