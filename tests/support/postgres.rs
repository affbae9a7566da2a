//! A real PostgreSQL for the tests: the server `HERALD_TEST_POSTGRES_URL` names when it is set,
//! else a throwaway cluster started from PostgreSQL's own `initdb` and `pg_ctl` in a temporary
//! directory on a free port (scripts/test installs Debian's `postgresql` when they are missing).
//! Each test takes a database of its own, dropped when the test ends.
//!
//! A cluster is stopped and removed when its owner drops it, and in any case when the test
//! process exits: a watchdog shell waits on a pipe from this process and cleans up at its end.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use super::free_port;

/// A PostgreSQL server the tests may use.
pub struct Postgres {
    /// `postgres://USER@HOST:PORT` with no database.
    server: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Closing it tells the watchdog to stop the cluster and remove its directory.
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

static SHARED: OnceLock<Postgres> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

impl Postgres {
    /// The server every test of this binary shares (each in its own database).
    pub fn shared() -> &'static Postgres {
        SHARED.get_or_init(|| match std::env::var("HERALD_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Postgres {
                server: server_part(&url),
                cluster: None,
            },
            _ => Postgres::own(),
        })
    }

    /// A cluster of the caller's own, which it may stop and start (always started here, never
    /// the machine's server).
    pub fn own() -> Postgres {
        let cluster = Cluster::start();
        Postgres {
            server: format!("postgres://postgres@127.0.0.1:{}", cluster.port),
            cluster: Some(cluster),
        }
    }

    /// A new, empty database; its URL. Dropped with the returned guard.
    pub fn database(&self, hint: &str) -> Database<'_> {
        let name = format!(
            "herald_{}_{}_{}",
            hint.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(30)
                .collect::<String>()
                .to_lowercase(),
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.psql(&format!("CREATE DATABASE {name}"));
        Database {
            server: self,
            url: format!("{}/{name}", self.server),
            name,
        }
    }

    /// Runs one SQL statement as the server's administrator; its output, unaligned.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// As [`Postgres::psql`], in database `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        let psql = match &self.cluster {
            Some(c) => c.bin.join("psql"),
            None => PathBuf::from("psql"),
        };
        let out = Command::new(&psql)
            .arg(format!("{}/{database}", self.server))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", psql.display()));
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The postmaster's process id (for CPU accounting), with a cluster of our own.
    pub fn pid(&self) -> Option<u32> {
        let c = self.cluster.as_ref()?;
        std::fs::read_to_string(c.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the server (a fast shutdown: sessions are disconnected). Own clusters only.
    pub fn stop(&self) {
        let c = self
            .cluster
            .as_ref()
            .expect("only a cluster of the test's own");
        c.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts a stopped server again on the same port.
    pub fn start(&self) {
        let c = self
            .cluster
            .as_ref()
            .expect("only a cluster of the test's own");
        c.pg_ctl_start();
    }
}

/// A database of one test.
pub struct Database<'a> {
    server: &'a Postgres,
    pub url: String,
    pub name: String,
}

impl Drop for Database<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.server.psql(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
            }));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster
            && let Some((mut child, stdin)) = c.watchdog.lock().unwrap().take()
        {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Cluster {
    fn start() -> Cluster {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "herald-pg-{}-{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if as_root() {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown postgres {}", dir.display());
        }
        let out = run_as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .arg("--locale=C")
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            port: free_port(),
            watchdog: Mutex::new(None),
            bin,
            dir,
        };
        cluster.pg_ctl_start();
        *cluster.watchdog.lock().unwrap() = Some(cluster.watchdog());
        cluster
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["start", "-w", "-t", "60", "-o", &options, "-l"]);
    }

    /// Runs `pg_ctl ARGS` (a trailing `-l` gets the log file).
    fn pg_ctl(&self, args: &[&str]) {
        let mut cmd = run_as_owner(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(self.dir.join("data")).args(args);
        if args.last() == Some(&"-l") {
            cmd.arg(self.dir.join("log"));
        }
        let out = cmd.output().expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn watchdog(&self) -> (Child, ChildStdin) {
        let script = format!(
            "read _; {owner} {pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            owner = if as_root() {
                "runuser -u postgres --"
            } else {
                ""
            },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh");
        let stdin = child.stdin.take().unwrap();
        (child, stdin)
    }
}

/// Where PostgreSQL's server programs are: `HERALD_TEST_PG_BIN`, Debian's
/// `/usr/lib/postgresql/VERSION/bin` (the newest), or the directory of `initdb` on PATH.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HERALD_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("initdb"))
            .find(|p| p.exists())
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(Path::to_owned))
    });
    on_path.unwrap_or_else(|| {
        panic!("no PostgreSQL server programs (initdb, pg_ctl): run scripts/test, which installs Debian's postgresql, or set HERALD_TEST_POSTGRES_URL")
    })
}

/// Whether the tests run as root (then the cluster runs as the `postgres` user).
fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run_as_owner(program: &Path) -> Command {
    if as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// `postgres://user@host:port` of a URL, without its database and options.
fn server_part(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match url.find("://").map(|i| i + 3) {
        Some(start) => match url[start..].find('/') {
            Some(slash) => url[..start + slash].to_owned(),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
