//! Herald's fuzz targets, one module each, shared by two callers: the libFuzzer binaries in
//! `fuzz/fuzz_targets/` (`scripts/fuzz` runs them) and the corpus replay test,
//! `tests/fuzz_corpus.rs`, which includes this file by path and runs every input kept in
//! `fuzz/seeds/<target>/`, so CI catches a regression without fuzzing.
//!
//! Each `run` takes any bytes and must return: a panic is a crash. Besides "no panic", the
//! targets assert the contracts that are cheap to check on every input (ARCHITECTURE.md §2.5:
//! every audit field is hostile), in [`checks`].
//!
//! Nothing here touches the network or a store; the only files read are the operator JSON
//! templates in `fuzz/templates/`.

pub mod checks;
pub mod config;
pub mod decode;
pub mod http_body;
pub mod render;
