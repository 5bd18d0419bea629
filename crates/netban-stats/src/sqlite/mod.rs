//! The SQLite statistics backend: `stats.db` in the state directory, one host's bans.
//!
//! Its own file, not the state database: statistics grow with history while the state stays
//! small, and a long report never holds a lock `netban ban` waits for. The file is created
//! 0600, in WAL mode; schema changes are numbered files in `migrations/`, recorded in
//! `PRAGMA user_version`.
//!
//! Raw counted bans go to `events`; every write also updates per-day rollups (`daily` by
//! dimension, `daily_targets`, `daily_networks`) in the same transaction as the host's mark,
//! so every query reads at most one row per day and key, whatever the history ([`write`],
//! [`read`]). Retention deletes whole days.

mod read;
mod write;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};

use crate::backend::{Recorded, StatsBackend};
use crate::error::StatsError;
use crate::model::{Day, EnrichedEvent};
use crate::report::{AsnCount, HostCount, NetworkCount, Offender, Report, Summary, Window};

const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_init.sql")];

/// How long a statement waits for another process's write (the daemon and `netban stats`
/// may ingest at the same time).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Dimensions of the `daily` table.
pub(crate) mod dim {
    pub const TOTAL: i64 = 0;
    pub const COUNTRY: i64 = 1;
    pub const JAIL: i64 = 2;
    pub const ASN: i64 = 3;
    pub const HOST: i64 = 4;
    pub const HOST_JAIL: i64 = 5;
}

/// Statistics in `stats.db`. Cheap to clone.
#[derive(Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (creating when missing) the statistics file at `path` (normally
    /// `state_dir/stats.db`).
    pub fn open(path: &Path) -> Result<SqliteBackend, StatsError> {
        let sql = |source| StatsError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if std::fs::symlink_metadata(path).is_err() {
            // Created by us so it is 0600 from the first byte (-wal and -shm follow its mode),
            // never through a symlink.
            OpenOptions::new()
                .create_new(true)
                .append(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|source| StatsError::Open {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sql)?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let backend = SqliteBackend {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
            }),
        };
        backend.migrate()?;
        Ok(backend)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn migrate(&self) -> Result<(), StatsError> {
        let path = self.inner.path.clone();
        let sql = |source| StatsError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = self.inner.conn();
        let known = MIGRATIONS.len() as i64;
        let current: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if current == known {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version > known {
            return Err(StatsError::TooNew {
                path: path.clone(),
                found: version,
                known,
            });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(step).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StatsError> {
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn();
            f(&mut conn).map_err(|source| StatsError::Sqlite {
                path: inner.path.clone(),
                source,
            })
        })
        .await;
        joined.map_err(|e| StatsError::Task(e.to_string()))?
    }

    /// Bytes used by the database file (pages in use; for the benchmark).
    pub async fn size(&self) -> Result<u64, StatsError> {
        self.with(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok(u64::try_from((pages - free) * size).unwrap_or(0))
        })
        .await
    }
}

impl Inner {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back an unfinished transaction: a poisoned lock leaves it usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl StatsBackend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn record(&self, events: &[EnrichedEvent]) -> Result<Recorded, StatsError> {
        for e in events {
            crate::backend::check_host(&e.host)?;
        }
        let events = events.to_vec();
        self.with(move |c| write::record(c, events)).await
    }

    async fn mark(&self, host: &str) -> Result<i64, StatsError> {
        let host = host.to_string();
        self.with(move |c| write::mark(c, &host)).await
    }

    async fn report(&self, window: Window) -> Result<Report, StatsError> {
        self.with(move |c| read::report(c, window)).await
    }

    async fn top_asns(&self, window: Window, limit: usize) -> Result<Vec<AsnCount>, StatsError> {
        self.with(move |c| read::top_asns(c, window, limit)).await
    }

    async fn top_networks(
        &self,
        window: Window,
        limit: usize,
    ) -> Result<Vec<NetworkCount>, StatsError> {
        self.with(move |c| read::top_networks(c, window, limit))
            .await
    }

    async fn top_offenders(
        &self,
        window: Window,
        limit: usize,
    ) -> Result<Vec<Offender>, StatsError> {
        self.with(move |c| read::top_offenders(c, window, limit))
            .await
    }

    async fn hosts(&self, window: Window) -> Result<Vec<HostCount>, StatsError> {
        self.with(move |c| read::hosts(c, window)).await
    }

    async fn summary(&self, window: Window, limit: usize) -> Result<Summary, StatsError> {
        self.with(move |c| read::summary(c, window, limit)).await
    }

    async fn prune(&self, keep_from: Day) -> Result<u64, StatsError> {
        self.with(move |c| write::prune(c, keep_from)).await
    }
}
