//! `kind = "file"`: each message becomes `DIR/KEY.eml`. The quickstart's channel: no mail server
//! needed to see what Herald would send.

use std::io::Write;
use std::path::{Path, PathBuf};

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

fn default_concurrency() -> usize {
    4
}

pub(super) struct FileDrop {
    dir: PathBuf,
}

impl FileDrop {
    pub fn new(config: &FileConfig, base: &Path) -> Result<FileDrop, String> {
        let dir = base.join(&config.dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(FileDrop { dir })
    }
}

/// Writes to a temporary name, syncs, then renames: a reader never sees half a message, and a
/// message written twice (a resend after a crash) replaces itself instead of duplicating.
fn write_atomically(dir: &Path, key: &str, message: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{key}.eml.tmp"));
    let path = dir.join(format!("{key}.eml"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(message)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
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
