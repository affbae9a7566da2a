//! `kind = "file"`: a file, or a directory of files, in any format the decoders accept.
//!
//! Files are read in bounded pieces (about [`PIECE`], growing for one large record up to
//! [`MAX_RECORD`]), each committed with the file's new [`mark::Mark`], so a restart resumes there
//! and a large file never sits in memory whole. [`tail::cut`] decides how much of what was read
//! is complete; an incomplete tail of a followed file waits until the file has been quiet for
//! `settle` (its modification time: a writer closing the file cannot be seen portably).
//!
//! While following, each file is kept open: when `path` comes to name another file (rotation by
//! rename), the open one is read to its end first. A file whose inode or first bytes changed
//! is new and read from its start. After a restart, a file rotated away meanwhile is found
//! beside `path` as `path.1` and read to its end first. Which files of a directory are read is [`select`]'s; `.gz`
//! files are read decompressed, their checkpoint counting decompressed bytes.

mod mark;
mod select;
mod tail;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{GroupCommit, Ingest, Piece};
use crate::store::{Store, StoreError};
use crate::values::duration;
use mark::{FINGERPRINT_LEN, Mark, fingerprint};
use select::{Select, is_gz};

/// What is read at a time; newline-delimited input is committed in pieces of about this size.
const PIECE: usize = 1 << 20;
/// The largest single record (or document) read whole; a larger one is a dead letter.
const MAX_RECORD: usize = 64 << 20;

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
    /// How long a followed file's incomplete tail must be quiet before it is read as it is.
    #[serde(default = "default_settle", deserialize_with = "duration")]
    pub settle: Duration,
    /// Globs of the files a directory source reads.
    #[serde(default = "select::default_include")]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// A missing `path` is a directory Herald creates (a drop folder), not an error.
    #[serde(default)]
    pub create: bool,
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}

fn default_settle() -> Duration {
    Duration::from_secs(5)
}

impl FileSourceConfig {
    /// What is wrong with this source as configured: (key, message). `base` is the
    /// configuration file's directory.
    pub fn problem(&self, base: &Path) -> Option<(String, String)> {
        if let Err(problem) = Select::new(&self.include, &self.exclude) {
            return Some(problem);
        }
        let root = base.join(&self.path);
        (!self.create && !self.follow && !root.exists()).then(|| {
            (
                "path".to_owned(),
                format!("{} does not exist", root.display()),
            )
        })
    }
}

/// A file kept open while following.
struct Open {
    file: File,
    device: u64,
    inode: u64,
}

struct Reader<'a, S: Store> {
    config: &'a FileSourceConfig,
    ingest: &'a Ingest<S>,
    stop: &'a CancellationToken,
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
    let select = match Select::new(&config.include, &config.exclude) {
        Ok(select) => select,
        Err((key, message)) => {
            tracing::error!(source = %config.name, key, message, "not reading");
            return Ok(());
        }
    };
    if config.create
        && !root.exists()
        && let Err(e) = std::fs::create_dir_all(&root)
    {
        tracing::warn!(source = %config.name, path = %root.display(), error = %e, "cannot create the directory");
    }
    let reader = Reader {
        config: &config,
        ingest: &ingest,
        stop: &stop,
    };
    let mut open: BTreeMap<PathBuf, Open> = BTreeMap::new();
    loop {
        let files = select.files(&root);
        // Files kept open whose name is gone from the listing are read to their end first.
        let gone: Vec<PathBuf> = open
            .keys()
            .filter(|p| !files.contains(p))
            .cloned()
            .collect();
        for path in gone.iter().chain(&files) {
            if stop.is_cancelled() {
                return Ok(());
            }
            reader.poll(path, &mut open).await?;
        }
        if !config.follow {
            open.clear();
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

impl<S: Store> Reader<'_, S> {
    /// Reads what is new at `path`: first the file kept open under that name if the name now
    /// names another file (rotation), then the file the name names.
    async fn poll(
        &self,
        path: &Path,
        open: &mut BTreeMap<PathBuf, Open>,
    ) -> Result<(), StoreError> {
        let name = path.display().to_string();
        let now = std::fs::metadata(path);
        if !open.contains_key(path)
            && let Some(rotated) = self.rotated_away(path, &name, now.as_ref().ok()).await?
        {
            open.insert(path.to_owned(), rotated);
        }
        if let Some(kept) = open.get(path) {
            let same = now
                .as_ref()
                .is_ok_and(|m| (m.dev(), m.ino()) == (kept.device, kept.inode));
            if !same {
                if !self.read(&name, kept).await? {
                    return Ok(()); // its tail is not settled yet; the new file waits
                }
                tracing::info!(source = %self.config.name, file = %name, "rotated: the old file is read to its end");
                open.remove(path);
            }
        }
        if let Err(e) = now {
            if self.config.follow && e.kind() == std::io::ErrorKind::NotFound {
                tracing::debug!(source = %self.config.name, file = %name, "waiting for the file");
            } else {
                tracing::warn!(source = %self.config.name, file = %name, error = %e, "cannot read the file; will look again");
            }
            return Ok(());
        }
        if !open.contains_key(path) {
            let opened = File::open(path).and_then(|file| {
                let meta = file.metadata()?;
                Ok(Open {
                    file,
                    device: meta.dev(),
                    inode: meta.ino(),
                })
            });
            match opened {
                Ok(o) => {
                    open.insert(path.to_owned(), o);
                }
                Err(e) => {
                    tracing::warn!(source = %self.config.name, file = %name, error = %e, "cannot open the file; will look again");
                    return Ok(());
                }
            }
        }
        if let Some(kept) = open.get(path) {
            self.read(&name, kept).await?;
        }
        Ok(())
    }

    /// The mark stored for file `name`, if any (and readable).
    async fn saved_mark(&self, name: &str) -> Result<Option<Mark>, StoreError> {
        Ok(self
            .ingest
            .checkpoint_patiently(&self.config.name, name, self.stop)
            .await?
            .as_deref()
            .and_then(Mark::parse))
    }

    /// After a restart: the file `path`'s checkpoint was in, when it is no longer at `path` but
    /// beside it as `path.1` (rotated while Herald was down), so it is read to its end first.
    async fn rotated_away(
        &self,
        path: &Path,
        name: &str,
        now: Option<&std::fs::Metadata>,
    ) -> Result<Option<Open>, StoreError> {
        let saved = self.saved_mark(name).await?;
        let Some(mark) = saved else {
            return Ok(None);
        };
        if now.is_some_and(|m| (m.dev(), m.ino()) == (mark.device, mark.inode)) {
            return Ok(None);
        }
        let mut sibling = path.as_os_str().to_owned();
        sibling.push(".1");
        let Ok(file) = File::open(&sibling) else {
            return Ok(None);
        };
        let Ok(meta) = file.metadata() else {
            return Ok(None);
        };
        let found = (meta.dev(), meta.ino()) == (mark.device, mark.inode);
        if found {
            tracing::info!(source = %self.config.name, file = %name, rotated = %Path::new(&sibling).display(), "the file was rotated while Herald was stopped; reading the rest of the old one first");
        }
        Ok(found.then_some(Open {
            file,
            device: meta.dev(),
            inode: meta.ino(),
        }))
    }

    /// Reads `kept` from its checkpoint as far as it is complete. True when nothing of it is
    /// left unread.
    async fn read(&self, name: &str, kept: &Open) -> Result<bool, StoreError> {
        let meta = match kept.file.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!(source = %self.config.name, file = %name, error = %e, "cannot read the file's metadata; will look again");
                return Ok(false);
            }
        };
        let saved = self.saved_mark(name).await?;
        let gz = is_gz(Path::new(name));
        let mark = match saved {
            Some(m)
                if m.recognises(&kept.file, kept.device, kept.inode)
                    && (gz || m.offset <= meta.len()) =>
            {
                m
            }
            _ => Mark::start(kept.device, kept.inode),
        };
        let quiet = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= self.config.settle);
        let settled = !self.config.follow || quiet;
        if gz {
            if mark.size == meta.len() {
                return Ok(true);
            }
            if !settled {
                return Ok(false); // an archive still being written
            }
            return self.read_gz(name, kept, mark, meta.len()).await;
        }
        if mark.offset == meta.len() {
            return Ok(true);
        }
        let mut source = Plain {
            file: &kept.file,
            at: mark.offset,
        };
        self.read_pieces(name, &mut source, mark, settled, |_| 0)
            .await
    }

    async fn read_gz(
        &self,
        name: &str,
        kept: &Open,
        mark: Mark,
        size: u64,
    ) -> Result<bool, StoreError> {
        let file = match kept.file.try_clone() {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(source = %self.config.name, file = %name, error = %e, "cannot read the file; will look again");
                return Ok(false);
            }
        };
        let mut decoder =
            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(Whole { file, at: 0 }));
        // What was committed before is decompressed again and passed over.
        let skipped = tokio::task::block_in_place(|| {
            std::io::copy(&mut (&mut decoder).take(mark.offset), &mut std::io::sink())
        });
        if let Err(e) = skipped {
            tracing::warn!(source = %self.config.name, file = %name, error = %e, "cannot decompress the file");
            return Ok(false);
        }
        let mut source = Decoded {
            decoder,
            name,
            source: &self.config.name,
        };
        // A .gz file is taken as written (not followed mid-write), so its end is settled.
        self.read_pieces(name, &mut source, mark, true, |_| size)
            .await
    }

    /// Reads `input` (positioned at `mark`) in pieces and commits each complete one, reading on
    /// while a commit is in flight ([`GroupCommit`]); returns once every commit is durable.
    /// `done_size` gives the mark's `size` for a piece that ends the input.
    async fn read_pieces(
        &self,
        name: &str,
        input: &mut (dyn Input + Send),
        mark: Mark,
        settled: bool,
        done_size: impl Fn(&Mark) -> u64 + Send,
    ) -> Result<bool, StoreError> {
        let label = format!("{}: {name}", self.config.name);
        let mut commits = GroupCommit::new(self.ingest.clone(), self.stop.clone(), label);
        let read = self
            .read_into(&mut commits, name, input, mark, settled, done_size)
            .await;
        // Whatever ended the reading, what was read is committed before the next read of
        // this source can begin, so checkpoints stay in order.
        let flushed = commits.flush().await;
        let done = read?;
        flushed.map(|()| done)
    }

    async fn read_into(
        &self,
        commits: &mut GroupCommit<S>,
        name: &str,
        input: &mut (dyn Input + Send),
        mut mark: Mark,
        settled: bool,
        done_size: impl Fn(&Mark) -> u64 + Send,
    ) -> Result<bool, StoreError> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            if self.stop.is_cancelled() {
                return Ok(false);
            }
            // Grow geometrically for a record larger than a piece, so it is parsed few times.
            let want = PIECE
                .max(buf.len())
                .min(MAX_RECORD.saturating_sub(buf.len()))
                .max(1);
            let start = buf.len();
            buf.resize(start + want, 0);
            // File reads (and decompression) block: they run where the runtime allows it
            // (`block_in_place`; Herald's runtime is multi-threaded), not on an async worker
            // that other sources, the dispatcher and the admin listener share.
            let n = match tokio::task::block_in_place(|| input.fill(&mut buf[start..])) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(source = %self.config.name, file = %name, error = %e, "cannot read the file; will look again");
                    return Ok(false);
                }
            };
            buf.truncate(start + n);
            let at_end = n < want;
            let take = match tail::cut(&buf, at_end && settled) {
                Some(take) => take,
                None if at_end => return Ok(buf.is_empty()),
                None if buf.len() >= MAX_RECORD => {
                    tracing::warn!(source = %self.config.name, file = %name, line = mark.line, "a record larger than {MAX_RECORD} bytes is kept as a dead letter");
                    buf.len()
                }
                None => continue,
            };
            let mut next = Mark {
                offset: mark.offset + take as u64,
                line: mark.line + buf[..take].iter().filter(|b| **b == b'\n').count() as u64,
                ..mark
            };
            if at_end && take == buf.len() {
                next.size = done_size(&next);
            }
            if next.fp_len < FINGERPRINT_LEN
                && let Some(len) = input.fingerprint_len(next.offset)
                && let Some(fp) = input.fingerprint(len)
            {
                next.fp_len = len;
                next.fp = fp;
            }
            let piece = Piece {
                source: &self.config.name,
                input: name,
                bytes: &buf[..take],
                first_line: mark.line as usize,
                checkpoint: Some((name.to_owned(), next.text())),
            };
            // Decoding and planning run here, beside the commit of the pieces before.
            let prepared = tokio::task::block_in_place(|| self.ingest.prepare(&[piece]));
            if let Some(prepared) = prepared {
                commits.push(prepared).await?;
            }
            mark = next;
            buf.drain(..take);
        }
    }
}

/// Bytes in order from where the mark left off.
trait Input {
    /// Fills `buf` as far as the input goes; fewer bytes than asked means its end.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// How many first bytes to fingerprint once `offset` bytes are committed.
    fn fingerprint_len(&self, offset: u64) -> Option<u64>;
    fn fingerprint(&self, len: u64) -> Option<u64>;
}

/// A plain file, read by offset (the open descriptor is shared across polls).
struct Plain<'a> {
    file: &'a File,
    at: u64,
}

impl Input for Plain<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], self.at)? {
                0 => break,
                n => {
                    got += n;
                    self.at += n as u64;
                }
            }
        }
        Ok(got)
    }

    fn fingerprint_len(&self, offset: u64) -> Option<u64> {
        Some(offset.min(FINGERPRINT_LEN))
    }

    fn fingerprint(&self, len: u64) -> Option<u64> {
        fingerprint(self.file, len)
    }
}

/// A `.gz` file's compressed bytes, read from its start by a descriptor of its own.
struct Whole {
    file: File,
    at: u64,
}

impl Read for Whole {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// A `.gz` file decompressed; its fingerprint covers the compressed bytes.
struct Decoded<'a> {
    decoder: flate2::read::MultiGzDecoder<std::io::BufReader<Whole>>,
    name: &'a str,
    source: &'a str,
}

impl Input for Decoded<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.decoder.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    // What decompressed is used; the damaged rest is reported, not retried.
                    tracing::warn!(source = %self.source, file = %self.name, error = %e, "the compressed file is damaged; read up to the damage");
                    break;
                }
            }
        }
        Ok(got)
    }

    fn fingerprint_len(&self, _offset: u64) -> Option<u64> {
        let size = self.decoder.get_ref().get_ref().file.metadata().ok()?.len();
        Some(size.min(FINGERPRINT_LEN))
    }

    fn fingerprint(&self, len: u64) -> Option<u64> {
        fingerprint(&self.decoder.get_ref().get_ref().file, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &str, follow: bool, create: bool) -> FileSourceConfig {
        FileSourceConfig {
            name: "events".into(),
            path: path.into(),
            follow,
            poll_interval: default_poll(),
            settle: default_settle(),
            include: select::default_include(),
            exclude: Vec::new(),
            create,
        }
    }

    #[test]
    fn a_missing_path_is_a_problem_unless_waited_for() {
        let base = Path::new("/nonexistent-herald-base");
        let (key, message) = config("/x/evnets", false, false).problem(base).unwrap();
        assert_eq!(key, "path");
        assert_eq!(message, "/x/evnets does not exist");
        assert!(config("/x/evnets", true, false).problem(base).is_none());
        assert!(config("/x/evnets", false, true).problem(base).is_none());
        assert!(config("/", false, false).problem(base).is_none());
    }
}
