//! The fuzz targets' kept inputs, replayed without fuzzing: every file in
//! `fuzz/seeds/<target>/` (seeds, and each crash once found, as `crash-…`) through the same
//! target body the fuzzer runs (`fuzz/src/`, included by path), plus the project's own
//! fixtures and example configurations. A panic fails the test naming the file.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Every regular file directly in `dir`, sorted; none if `dir` does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file of `dirs`; returns how many ran.
fn replay(target: fn(&[u8]), dirs: &[&str]) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<PathBuf> = dirs.iter().flat_map(|d| files_in(&root.join(d))).collect();
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            let name = file.strip_prefix(root).unwrap_or(file);
            failed.push(format!("{}: {message}", name.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} input(s) panicked:\n{}",
        failed.len(),
        failed.join("\n")
    );
    files.len()
}

#[test]
fn kept_decode_inputs_and_fixtures_decode_without_panicking() {
    let ran = replay(
        targets::decode::run,
        &[
            "fuzz/seeds/decode",
            "tests/fixtures/entra",
            "examples/events",
        ],
    );
    assert!(ran > 10, "only {ran} inputs");
}

#[test]
fn kept_config_inputs_and_examples_load_or_fail_located() {
    let ran = replay(targets::config::run, &["fuzz/seeds/config", "examples"]);
    assert!(ran > 2, "only {ran} inputs");
}

#[test]
fn kept_render_inputs_render_safely_in_every_format() {
    let ran = replay(targets::render::run, &["fuzz/seeds/render"]);
    assert!(ran > 2, "only {ran} inputs");
}

#[test]
fn kept_http_bodies_are_bounded_and_decoded() {
    let ran = replay(targets::http_body::run, &["fuzz/seeds/http_body"]);
    assert!(ran > 2, "only {ran} inputs");
}
