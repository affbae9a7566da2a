//! Postfix's `smtp-sink` for the benchmarks: a fast SMTP test server in C, so a delivery
//! benchmark measures Herald rather than a Python server. `scripts/bench` unpacks it from
//! Debian's postfix package and names it in `HERALD_SMTP_SINK`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

/// The `smtp-sink` binary `scripts/bench` provides, if any.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("HERALD_SMTP_SINK").map(PathBuf::from)
}

/// Postfix's `smtp-sink`, dumping each message it accepts into a directory.
pub struct SmtpSink {
    pub port: u16,
    dumps: PathBuf,
    pub child: Child,
}

impl SmtpSink {
    pub fn start(binary: &Path, dir: &Path) -> SmtpSink {
        let dumps = dir.join("sink");
        std::fs::create_dir_all(&dumps).unwrap();
        let port = free_port();
        let mut cmd = Command::new(binary);
        // As root it must be told whom to run as; the dump directory must then be writable.
        if is_root() {
            std::fs::set_permissions(&dumps, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .unwrap();
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .arg("-d")
            .arg(format!("{}/%M.", dumps.display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink { port, dumps, child }
    }

    pub fn received(&self) -> usize {
        std::fs::read_dir(&self.dumps).unwrap().count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
