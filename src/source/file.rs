//! `kind = "file"`: a file, or a directory of files, in any format the decoders accept.
//!
//! Per file, the store keeps `device:inode:offset:line`. A restart resumes at the offset; a file
//! that was replaced (another inode) or truncated (shorter than the offset) is read from its
//! start, which is how log rotation looks. With `follow = true` the source keeps watching for
//! appended data and new files, and only reads up to the last complete line, so a record being
//! written is never taken half.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Ingest, Piece};
use crate::store::{Store, StoreError};
use crate::values::duration;

/// Newline-delimited files are committed in pieces of about this size, so a large file makes
/// progress that survives a restart.
const PIECE: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    pub name: String,
    /// A file or a directory (relative to the configuration file).
    pub path: PathBuf,
    #[serde(default)]
    pub follow: bool,
    #[serde(default = "default_poll", deserialize_with = "duration")]
    pub poll_interval: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}

/// Where a file has been read to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    device: u64,
    inode: u64,
    offset: u64,
    line: u64,
}

impl Mark {
    fn parse(text: &str) -> Option<Mark> {
        let mut parts = text.split(':').map(str::parse::<u64>);
        Some(Mark {
            device: parts.next()?.ok()?,
            inode: parts.next()?.ok()?,
            offset: parts.next()?.ok()?,
            line: parts.next()?.ok()?,
        })
    }

    fn text(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.device, self.inode, self.offset, self.line
        )
    }
}

/// Reads every file to its end (or, following, forever), committing as it goes.
pub async fn run<S: Store>(
    config: FileSourceConfig,
    base: PathBuf,
    ingest: Ingest<S>,
    stop: CancellationToken,
    once: bool,
) -> Result<(), StoreError> {
    let root = base.join(&config.path);
    loop {
        for file in files(&root) {
            if stop.is_cancelled() {
                return Ok(());
            }
            read_file(&config, &file, &ingest, &stop, once).await?;
        }
        if once || !config.follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

/// The files under `root` in name order, hidden ones skipped.
fn files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    if root.is_dir() {
        let mut out = Vec::new();
        walk(root, &mut out);
        out.sort();
        out
    } else {
        vec![root.to_owned()]
    }
}

async fn read_file<S: Store>(
    config: &FileSourceConfig,
    path: &Path,
    ingest: &Ingest<S>,
    stop: &CancellationToken,
    once: bool,
) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;

    let name = path.display().to_string();
    let Ok(meta) = std::fs::metadata(path) else {
        tracing::warn!(source = %config.name, file = %name, "cannot read the file's metadata; will look again");
        return Ok(());
    };
    let saved = ingest
        .store()
        .checkpoint(&config.name, &name)
        .await?
        .as_deref()
        .and_then(Mark::parse);
    let mut mark = match saved {
        Some(m) if m.device == meta.dev() && m.inode == meta.ino() && m.offset <= meta.len() => m,
        _ => Mark {
            device: meta.dev(),
            inode: meta.ino(),
            offset: 0,
            line: 1,
        },
    };
    if mark.offset == meta.len() {
        return Ok(());
    }
    // Only what follows the checkpoint is read: a followed log is not read again from its start
    // at every poll.
    let bytes = match read_from(path, mark.offset).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(source = %config.name, file = %name, error = %e, "cannot read the file; will look again");
            return Ok(());
        }
    };
    let mut rest = &bytes[..];
    while !rest.is_empty() && !stop.is_cancelled() {
        let take = piece_len(rest, config.follow && !once);
        if take == 0 {
            break;
        }
        let piece = &rest[..take];
        let next = Mark {
            offset: mark.offset + take as u64,
            line: mark.line + piece.iter().filter(|b| **b == b'\n').count() as u64,
            ..mark
        };
        let piece = Piece {
            source: &config.name,
            input: &name,
            bytes: piece,
            first_line: mark.line as usize,
            checkpoint: Some((name.clone(), next.text())),
        };
        let intake = ingest.commit_patiently(piece, stop).await?;
        tracing::info!(source = %config.name, file = %name, offset = next.offset, records = intake.records, queued = intake.committed.queued, dead_letters = intake.committed.dead_letters, "committed");
        mark = next;
        rest = &rest[take..];
    }
    Ok(())
}

async fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// How much of `rest` to commit next. Newline-delimited input is cut at a line end near
/// [`PIECE`]; a document that is not (a pretty-printed envelope) goes whole. When following,
/// only complete lines are taken: the writer may be mid-record.
fn piece_len(rest: &[u8], complete_lines_only: bool) -> usize {
    let last_newline = rest.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
    let first_line = rest.split(|b| *b == b'\n').next().unwrap_or(rest);
    let line_delimited = serde_json::from_slice::<&serde_json::value::RawValue>(first_line).is_ok();
    if line_delimited && rest.len() > PIECE {
        let window = &rest[..PIECE];
        if let Some(end) = window.iter().rposition(|b| *b == b'\n') {
            return end + 1;
        }
    }
    if complete_lines_only {
        last_newline.unwrap_or(0)
    } else {
        rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        let m = Mark {
            device: 1,
            inode: 2,
            offset: 3,
            line: 4,
        };
        assert_eq!(Mark::parse(&m.text()), Some(m));
        assert_eq!(Mark::parse("garbage"), None);
    }

    #[test]
    fn following_takes_only_complete_lines() {
        assert_eq!(piece_len(b"{\"a\":1}\n{\"b\":", true), 8);
        assert_eq!(piece_len(b"{\"a\":1}\n{\"b\":", false), 13);
        assert_eq!(piece_len(b"{\"b\":", true), 0);
    }
}
