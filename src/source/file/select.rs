//! Which files of a directory source are read: `include` / `exclude` globs.
//!
//! A glob without `/` matches a file's name at any depth (`*.json`); one with `/` matches the
//! path below the directory (`2026/*/audit-*.ndjson`). Hidden files and directories are skipped.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// What a directory source reads unless told otherwise.
pub const DEFAULT_INCLUDE: &[&str] = &[
    "*.json",
    "*.ndjson",
    "*.jsonl",
    "*.log",
    "*.json.gz",
    "*.ndjson.gz",
    "*.jsonl.gz",
    "*.log.gz",
];

pub fn default_include() -> Vec<String> {
    DEFAULT_INCLUDE.iter().map(|s| s.to_string()).collect()
}

pub struct Select {
    include: GlobSet,
    exclude: GlobSet,
}

impl Select {
    /// Fails with the key (`include[1]`) and why.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Select, (String, String)> {
        Ok(Select {
            include: globs("include", include)?,
            exclude: globs("exclude", exclude)?,
        })
    }

    pub fn wants(&self, relative: &Path) -> bool {
        self.include.is_match(relative) && !self.exclude.is_match(relative)
    }

    /// The files to read under `root` in name order; `root` itself when it is not a directory
    /// (a file named by `path` is read whatever its name).
    pub fn files(&self, root: &Path) -> Vec<PathBuf> {
        if !root.is_dir() {
            return vec![root.to_owned()];
        }
        let mut out = Vec::new();
        self.walk(root, root, &mut out);
        out.sort();
        out
    }

    fn walk(&self, root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list the directory");
                return;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                self.walk(root, &path, out);
            } else if self.wants(path.strip_prefix(root).unwrap_or(&path)) {
                out.push(path);
            }
        }
    }
}

/// Whether a file is read through gzip.
pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

fn globs(key: &str, patterns: &[String]) -> Result<GlobSet, (String, String)> {
    let mut set = GlobSetBuilder::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let anchored = if pattern.contains('/') {
            pattern.clone()
        } else {
            format!("**/{pattern}")
        };
        let glob = GlobBuilder::new(&anchored)
            .literal_separator(true)
            .build()
            .map_err(|e| (format!("{key}[{i}]"), format!("{pattern:?}: {}", e.kind())))?;
        set.add(glob);
    }
    set.build().map_err(|e| (key.to_owned(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_take_json_logs_and_their_gz_only() {
        let s = Select::new(&default_include(), &[]).unwrap();
        for yes in [
            "a.json",
            "sub/b.ndjson",
            "c.jsonl",
            "d.log",
            "e.json.gz",
            "f.log.gz",
        ] {
            assert!(s.wants(Path::new(yes)), "{yes}");
        }
        for no in ["README", "README.md", "rules.yaml", "x.gz", "a.json.bak"] {
            assert!(!s.wants(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn exclude_wins_and_bad_globs_are_named() {
        let s = Select::new(&default_include(), &["*-old.json".into()]).unwrap();
        assert!(!s.wants(Path::new("x/a-old.json")));
        let err = Select::new(&["*.json".into(), "[".into()], &[])
            .err()
            .unwrap();
        assert_eq!(err.0, "include[1]");
    }
}
