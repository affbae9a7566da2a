//! `kind = "file"`: each message becomes `DIR/KEY.eml`. The quickstart's channel: no mail server
//! needed to see what Herald would send.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::{Channel, Outgoing, SendError, SendFuture};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub from: String,
    /// Relative to the configuration file.
    pub dir: PathBuf,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// Writes to a local disk are cheap to have in flight together, and concurrent fsyncs share
/// the disk's flushes (and [`DirSync`] the directory's).
fn default_concurrency() -> usize {
    16
}

pub(super) struct FileDrop {
    dir: Arc<DirSync>,
}

/// The directory's fsync, shared by concurrent writes: a rename is durable once the
/// directory is synced after it, so one sync serves every rename finished before it began.
struct DirSync {
    dir: PathBuf,
    /// Renames finished so far.
    renamed: AtomicU64,
    /// How many renames the last completed sync covered; held while syncing.
    synced: Mutex<u64>,
}

impl DirSync {
    /// Returns once rename number `ticket` (from `renamed`) is durable.
    fn sync(&self, ticket: u64) -> std::io::Result<()> {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if *synced >= ticket {
            return Ok(());
        }
        let covers = self.renamed.load(Ordering::Acquire);
        std::fs::File::open(&self.dir)?.sync_all()?;
        *synced = covers;
        Ok(())
    }
}

impl FileDrop {
    pub fn new(config: &FileConfig, base: &Path) -> Result<FileDrop, String> {
        let dir = base.join(&config.dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(FileDrop {
            dir: Arc::new(DirSync {
                dir,
                renamed: AtomicU64::new(0),
                synced: Mutex::new(0),
            }),
        })
    }
}

/// Writes to a temporary name, syncs, then renames and syncs the directory: a reader never
/// sees half a message, a message written twice (a resend after a crash) replaces itself
/// instead of duplicating, and it is durable before it counts as sent.
fn write_atomically(dir: &DirSync, key: &str, message: &[u8]) -> std::io::Result<()> {
    let tmp = dir.dir.join(format!(".{key}.eml.tmp"));
    let path = dir.dir.join(format!("{key}.eml"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(message)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    let ticket = dir.renamed.fetch_add(1, Ordering::AcqRel) + 1;
    dir.sync(ticket)
}

impl Channel for FileDrop {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> SendFuture<'a> {
        if let Some(not_begun) = message.must_not_begin("writing the message") {
            return Box::pin(std::future::ready(Err(not_begun)));
        }
        let dir = self.dir.clone();
        let key = message.key.to_owned();
        let bytes = message.message.to_vec();
        Box::pin(async move {
            let name = key.clone();
            tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
                .await
                .map_err(|e| SendError::Transient(format!("writing the message: {e}")))?
                .map_err(|e| SendError::Transient(format!("writing the message: {e}")))?;
            Ok(format!("written as {key}.eml"))
        })
    }
}
