//! `config`: any text as a configuration file (`herald::config::Config::parse`), then what
//! `herald check` does with one that loads: its requirements, its templates (the planner) and
//! every rule rendered against the built-in sample event.
//!
//! Asserted: an error is located in the file (`FILE[:LINE]: …`, the line inside the text).
//! The file is named in a directory that does not exist, so relative paths (templates, TLS
//! files, a file source) resolve to nothing; a configuration naming an absolute path for a
//! template is parsed but not planned, so that no input makes the fuzzer read a device file.
//! (An absolute TLS path is read by `Config::parse` itself, as `herald check` needs.)

use std::path::Path;

use herald::config::{Config, Needs};
use herald::pipeline::Pipeline;

const SAMPLE_EVENT: &[u8] = include_bytes!("../../templates/sample-event.json");

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/herald-fuzz/herald.toml");
    let config = match Config::parse(path, text) {
        Ok(config) => config,
        Err(e) => {
            assert_eq!(e.path, path);
            if let Some(line) = e.line {
                let lines = text.split('\n').count();
                assert!(line >= 1 && line <= lines, "line {line} of {lines}: {e}");
            }
            assert!(e.to_string().starts_with(path.to_str().unwrap()));
            return;
        }
    };
    for warning in &config.warnings {
        let _ = warning.to_string();
    }
    let _ = config.require(Needs::Everything);
    let absolute = config
        .channels
        .values()
        .filter_map(|c| c.template())
        .any(Path::is_absolute)
        || config
            .rules
            .rules()
            .iter()
            .any(|r| Path::new(&r.template).is_absolute());
    if absolute {
        return;
    }
    if let Ok(pipeline) = Pipeline::new(config) {
        let _ = pipeline.render_samples(SAMPLE_EVENT);
    }
}
