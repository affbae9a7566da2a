//! Which database a store URL names, and how to open it: the connection settings, the pool and
//! the schema migrations of each engine. Everything past opening is one set of queries
//! (`sql.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use super::StoreError;

/// The database engine behind a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// One file, one `herald run` (default).
    Sqlite(PathBuf),
    /// A server shared by every instance.
    Postgres,
}

/// Whether opening a store may change its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply the migrations this version has and the database lacks.
    Migrate,
    /// Only check that every migration is applied (`herald run --no-migrate`).
    Check,
}

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

impl Engine {
    /// The engine a URL names; `sqlite://` paths are taken relative to `base`. The error never
    /// repeats the URL, which may hold a password.
    pub fn of(url: &str, base: &Path) -> Result<Engine, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Engine::Postgres);
        }
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
            return Err(format!(
                "store URL scheme {scheme:?} is not supported (use sqlite://PATH or postgres://…)"
            ));
        };
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() {
            return Err("the sqlite:// store URL names no file".to_owned());
        }
        let path = Path::new(path);
        Ok(Engine::Sqlite(if path.is_absolute() {
            path.to_owned()
        } else {
            base.join(path)
        }))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Engine::Sqlite(_) => &SQLITE,
            Engine::Postgres => &POSTGRES,
        }
    }

    /// Opens a pool of `size` connections (`None`: the engine's default).
    pub(super) async fn connect(
        &self,
        url: &str,
        size: Option<u32>,
    ) -> Result<AnyPool, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, options) = match self {
            Engine::Sqlite(path) => (
                format!("sqlite://{}?mode=rwc", escape_path(path)),
                AnyPoolOptions::new()
                    .max_connections(size.unwrap_or(4))
                    .after_connect(|conn, _| Box::pin(sqlite_settings(conn)))
                    // A transaction whose COMMIT or ROLLBACK failed (an I/O error: the disk full
                    // or the file made read-only) leaves its connection counting a transaction
                    // it no longer has: reused, it would nest every later transaction in a
                    // savepoint and hold the write lock. Such a connection is closed, not
                    // pooled; a new one is opened when needed (ARCHITECTURE.md §7).
                    .after_release(|conn, _| {
                        Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
                    }),
            ),
            // A short acquire timeout: while the server is away, operations fail within seconds
            // (intake pauses, /readyz says so) instead of hanging.
            Engine::Postgres => (
                url.to_owned(),
                AnyPoolOptions::new()
                    .max_connections(size.unwrap_or(8))
                    .acquire_timeout(Duration::from_secs(5)),
            ),
        };
        if *self == Engine::Postgres {
            // One connection of our own first: its error says why (refused, authentication,
            // TLS), where the pool would only report that it timed out.
            let first = tokio::time::timeout(Duration::from_secs(10), AnyConnection::connect(&url));
            match first.await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                }
                Ok(Err(e)) => return Err(StoreError::new("connecting to PostgreSQL", e)),
                Err(_) => {
                    return Err(StoreError::new(
                        "connecting to PostgreSQL",
                        "no answer within 10 s",
                    ));
                }
            }
        }
        options.connect(&url).await.map_err(|e| match self {
            Engine::Sqlite(path) => StoreError::new(&format!("opening {}", path.display()), e),
            Engine::Postgres => StoreError::new("connecting to PostgreSQL", e),
        })
    }

    /// Migrates, or checks that nothing is left to migrate. On PostgreSQL, instances starting
    /// together take turns (sqlx holds an advisory lock while migrating).
    pub(super) async fn schema(&self, pool: &AnyPool, schema: Schema) -> Result<(), StoreError> {
        let migrator = self.migrator();
        if schema == Schema::Migrate {
            return migrator
                .run(pool)
                .await
                .map_err(|e| StoreError::new("migrating the store", e));
        }
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(pool)
                .await
            {
                Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                Err(_) => Vec::new(),
            };
        let missing: Vec<String> = migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StoreError::new(
                "--no-migrate",
                format!(
                    "the {} store lacks migrations {}; run `herald migrate --config FILE` first",
                    self.name(),
                    missing.join(", ")
                ),
            ))
        }
    }
}

/// WAL, and `synchronous = FULL` so a commit that returned survives power loss (the source
/// acknowledges right after it); a writer waits for another rather than failing.
async fn sqlite_settings(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000",
    )
    .await
    .map(|_| ())
}

/// A path as the path part of a `sqlite://` URL (which sqlx percent-decodes).
fn escape_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Proof that this process is the one `herald run` on a SQLite store: an exclusive lock on
/// `PATH.lock`, held until dropped (or the process dies, when the kernel lets it go).
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    pub fn acquire(db: &Path) -> Result<RunLock, StoreError> {
        let path = db.with_extension("db.lock");
        let file = std::fs::File::create(&path)
            .map_err(|e| StoreError::new(&format!("creating {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::new(
                &format!("{}", db.display()),
                "another `herald run` is using this SQLite store; run one process per SQLite file (several instances need the PostgreSQL store)",
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(StoreError::new(&format!("locking {}", path.display()), e))
            }
        }
    }
}

/// How long a starting instance waits for the previous process of its name to let go of it:
/// at once after a kill (its connection closes with it), within the keepalive below after its
/// machine died.
const INSTANCE_WAIT: Duration = Duration::from_secs(30);

/// Proof that no other live process runs as this instance on a PostgreSQL store: a session
/// advisory lock on the instance's name, held by a connection of its own until dropped (or the
/// process dies, when the server lets it go). Two processes of one name would each release and
/// renew the other's claims as their own.
pub struct InstanceLock {
    _conn: AnyConnection,
}

impl InstanceLock {
    pub async fn acquire(url: &str, name: &str) -> Result<InstanceLock, StoreError> {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(url)
            .await
            .map_err(|e| StoreError::new("connecting to PostgreSQL", e))?;
        // If this machine dies, the server notices within about 25 s and lets the name go
        // (its own keepalive default is two hours).
        conn.execute(
            "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3",
        )
        .await
        .map_err(|e| StoreError::new("configuring the instance connection", e))?;
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            // The two-key form, in a key space of Herald's own (0x48524c44, "HRLD").
            let held: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock(1213353028, hashtext($1))")
                    .bind(format!("herald-instance:{name}"))
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| StoreError::new("locking the instance name", e))?;
            if held {
                return Ok(InstanceLock { _conn: conn });
            }
            if started.elapsed() >= INSTANCE_WAIT {
                return Err(StoreError::new(
                    &format!("instance {name:?}"),
                    "another running instance has this name; give each instance its own (`herald run --instance NAME` or HERALD_INSTANCE)",
                ));
            }
            if !said {
                tracing::warn!(
                    instance = name,
                    "another process holds this instance name; waiting up to 30 s for it to let go"
                );
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The PostgreSQL channel a commit that queues notifications notifies (`NOTIFY`), so that every
/// instance's dispatcher claims at once rather than at its next poll (ARCHITECTURE.md §8).
pub const QUEUED_CHANNEL: &str = "herald_outbox";

/// Wakes `wake` whenever any instance sharing the PostgreSQL store at `url` commits
/// notifications, until `stop`. A lost connection is opened again (with a wake, since
/// notifications sent meanwhile are not delivered); the dispatcher's poll covers the gap.
pub async fn listen_for_queued(
    url: String,
    wake: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
) {
    use sqlx::postgres::PgListener;
    let mut wait = Duration::from_secs(1);
    loop {
        let listening = async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(QUEUED_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = tokio::select! {
            listener = listening => listener,
            _ = stop.cancelled() => return,
        };
        match listener {
            Ok(mut listener) => {
                wait = Duration::from_secs(1);
                wake.notify_one();
                loop {
                    tokio::select! {
                        // One wake covers every notification already waiting.
                        received = listener.try_recv() => match received {
                            Ok(Some(_)) => wake.notify_one(),
                            // The connection was lost; notifications sent meanwhile are gone.
                            Ok(None) => {
                                wake.notify_one();
                                tracing::warn!("the PostgreSQL notification connection was lost; opening it again");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "PostgreSQL notifications failed; opening them again");
                                break;
                            }
                        },
                        _ = stop.cancelled() => return,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "cannot listen for PostgreSQL notifications; the dispatcher polls meanwhile")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_engine() {
        let base = Path::new("/etc/herald");
        assert_eq!(
            Engine::of("sqlite://herald.db", base),
            Ok(Engine::Sqlite("/etc/herald/herald.db".into()))
        );
        assert_eq!(
            Engine::of("sqlite:///var/lib/herald/h.db?mode=rwc", base),
            Ok(Engine::Sqlite("/var/lib/herald/h.db".into()))
        );
        assert_eq!(
            Engine::of("postgres://herald:pw@db/herald", base),
            Ok(Engine::Postgres)
        );
        assert_eq!(
            Engine::of("postgresql://db/herald", base),
            Ok(Engine::Postgres)
        );
        let err = Engine::of("mysql://root:hunter2@db/herald", base).unwrap_err();
        assert!(
            err.contains("\"mysql\"") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(Engine::of("sqlite://", base).is_err());
    }

    #[test]
    fn paths_are_escaped_for_the_url() {
        assert_eq!(
            escape_path(Path::new("/data/my store#1?.db")),
            "/data/my%20store%231%3F.db"
        );
    }
}
