//! The state store: one SQLite file (WAL) under `state_dir`, shared by every netban process.
//!
//! fail2ban starts one `netban` per action call and several jails may ban the same address at
//! once, so every write is one short transaction and every process waits for the lock (busy
//! timeout) instead of failing. The file is created 0600: it names the addresses being banned
//! and the remote ids of rules.
//!
//! - [`leases`]: the leases, and the event each change appends to the outbox in the same
//!   transaction; [`lease_tx`] holds those writes at the level of one transaction, shared by
//!   single changes and [`batch`]es (many peer leases in one transaction);
//! - [`records`]: what each sink holds, and the work pending on it;
//! - [`events`]: the outbox and its consumers' cursors;
//! - [`meta`]: counters, the instance id, what netban keeps on sinks on purpose, refusals;
//! - [`peers`]: the cluster's peers, stream cursors and fleet-wide unbans to publish.
//!
//! Schema changes are numbered migration files in `migrations/`, applied in order and
//! recorded in `PRAGMA user_version`. Every error names the database file.

mod batch;
mod events;
mod lease_tx;
mod leases;
mod meta;
mod peers;
mod records;

pub use batch::Batch;
pub use leases::{LeaseChange, LeaseFacts};
pub use meta::{Kept, Refused};
pub use peers::{BusCursor, PeerMark, PeerProgress, PeerState, RevokeRequest};
pub use records::{RecordOp, RecordState, SinkRecord};

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_outbox.sql"),
    include_str!("../../migrations/0003_cluster.sql"),
];

/// How long a process waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}; create it or set state_dir in the config")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state directory {path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    #[error("state database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state database {path} is damaged ({source}); move it aside (mv {path} {path}.broken) and restart fail2ban so it sends its bans again"
    )]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Task(String),
    #[error(
        "state database {path} has schema version {found}, newer than this netban ({known}); upgrade netban"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

impl StoreError {
    /// True when SQLite gave up waiting for another process's lock.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Db { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }
}

/// The SQLite state. Cheap to share: the connection sits behind a mutex that is never held
/// across an `.await`. Its calls block (disk, other processes' locks): async code runs them
/// on a blocking thread.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    dir: PathBuf,
    instance: String,
}

impl Store {
    /// Opens (creating when missing) `state_dir/netban.db`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(state_dir)?;
        check_private_dir(state_dir)?;
        let path = state_dir.join("netban.db");
        retry_busy(|| Store::open_once(state_dir, &path)).map_err(|e| classify(&path, e))
    }

    fn open_once(dir: &Path, path: &Path) -> rusqlite::Result<Store> {
        // Create the file ourselves so it is 0600 from the first byte (SQLite gives the -wal
        // and -shm files the same mode); never through a symlink.
        if std::fs::symlink_metadata(path).is_err() {
            let _ = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL is persistent: set it once, not on every start (`netban ban` runs per ban).
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            instance: String::new(),
        };
        store.migrate()?;
        store.instance = store.load_instance()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory (locks and caches live beside the database).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This state database's random id, part of the ownership mark of what it makes.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back an
        // unfinished transaction), so a poisoned mutex is not a reason to stop.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a read (or a single statement) on the connection; errors name the file.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn();
        f(&conn).map_err(|e| classify(&self.path, e))
    }

    /// Runs `f` in an immediate write transaction, trying again while SQLite reports the
    /// database busy beyond its timeout (a storm of processes must not fail a ban).
    fn write<T>(
        &self,
        mut f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        retry_busy(|| {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .map_err(|e| classify(&self.path, e))
    }

    fn migrate(&self) -> rusqlite::Result<()> {
        let mut conn = self.conn();
        let known = MIGRATIONS.len() as i64;
        // The common case, an up-to-date schema, needs no write lock.
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current == known {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(rusqlite::Error::ToSqlConversionFailure(Box::new(TooNew {
                found: version,
                known,
            })));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()
    }
}

#[derive(Debug)]
struct TooNew {
    found: i64,
    known: i64,
}

impl std::fmt::Display for TooNew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "schema {} > {}", self.found, self.known)
    }
}

impl std::error::Error for TooNew {}

/// Turns a SQLite error into the operator's terms, naming the file.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::ToSqlConversionFailure(inner) = &e
        && let Some(t) = inner.downcast_ref::<TooNew>()
    {
        return StoreError::TooNew {
            path: path.to_path_buf(),
            found: t.found,
            known: t.known,
        };
    }
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(
            f.code,
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
        )
    {
        return StoreError::Corrupt {
            path: path.to_path_buf(),
            source: e,
        };
    }
    StoreError::Db {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Runs `op`, trying again while SQLite reports the database busy or locked beyond its busy
/// timeout (it does so at once in a few WAL corner cases, e.g. while another process
/// checkpoints as it closes).
fn retry_busy<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let give_up = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match op() {
            Err(e) if is_busy(&e) && std::time::Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(..20)));
            }
            other => return other,
        }
    }
}

/// True when SQLite reports the database busy or locked.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Creates `dir` (mode 0700) when missing; tightens nothing that exists.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let err = |source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    Ok(())
}

/// Refuses a state directory that somebody else could write to: whoever can, can replace
/// the database (and with it what netban deletes network-wide) or plant a symlink.
pub fn check_private_dir(dir: &Path) -> Result<(), StoreError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let unsafe_dir = |reason: String| StoreError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    };
    if meta.file_type().is_symlink() {
        // A symlink the operator made (state on another disk) is fine when the directory it
        // points to is safe; check that one.
        let real = std::fs::canonicalize(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        return check_private_dir(&real);
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_dir(format!(
            "is owned by uid {}, not by this user ({me}) or root; run: chown {me} {}",
            meta.uid(),
            dir.display()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "is writable by group or others (mode {:o}); run: chmod 700 {}",
            mode,
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
