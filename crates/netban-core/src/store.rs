//! The state store: one SQLite file (WAL) under `state_dir`, shared by every netban process.
//!
//! fail2ban starts one `netban` per action call and several jails may ban the same address at
//! once, so every write is one short transaction and every process waits for the lock (busy
//! timeout) instead of failing. The file is created 0600: it names the addresses being banned
//! and the remote ids of rules.
//!
//! Schema changes are numbered migration files in `migrations/`, applied in order and
//! recorded in `PRAGMA user_version`.

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::lease::{Lease, Origin, Until};
use crate::sink::LeaseInfo;
use crate::target::Target;

const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// How long a process waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}; create it or set state_dir in the config")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "state database {path} has schema version {found}, newer than this netban ({known}); upgrade netban"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// Whether the sink confirmed it holds a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// The sink confirmed it holds the target.
    Held,
    /// An add was tried and not confirmed: the remote side may or may not hold it.
    Adding,
}

impl RecordState {
    fn parse(s: &str) -> RecordState {
        if s == "held" {
            RecordState::Held
        } else {
            RecordState::Adding
        }
    }
}

/// What netban knows a sink holds for a target, and the work pending on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    pub sink: String,
    pub target: Target,
    pub state: RecordState,
    pub remote_id: Option<String>,
    pub expires: Option<i64>,
    pub lease: LeaseInfo,
    pub not_enforced: Option<String>,
    pub attempts: i64,
    pub next_try: i64,
    pub last_error: Option<String>,
    pub updated: i64,
}

/// The SQLite state. Cheap to share: the connection sits behind a mutex that is never held
/// across an `.await`.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating when missing) `state_dir/netban.db`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        retry_busy(|| Store::open_once(state_dir))
    }

    fn open_once(state_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(state_dir)?;
        let path = state_dir.join("netban.db");
        // Create the file ourselves so it is 0600 from the first byte; SQLite gives the -wal
        // and -shm files the same mode as the database.
        if !path.exists() {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .map_err(|source| StoreError::Dir {
                    path: path.clone(),
                    source,
                })?;
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL is persistent: set it once, not on every start (`netban ban` runs per ban).
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let store = Store {
            conn: Mutex::new(conn),
            path,
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back an
        // unfinished transaction), so a poisoned mutex is not a reason to stop.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let known = MIGRATIONS.len() as i64;
        // The common case, an up-to-date schema, needs no write lock.
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current == known {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds or replaces the lease `(target, jail, origin)`. A new lease makes the target's
    /// failed sink work due again at once. Returns the previous `until` if the lease existed.
    pub fn upsert_lease(&self, lease: &Lease, now: i64) -> Result<Option<Until>, StoreError> {
        retry_busy(|| self.upsert_lease_once(lease, now))
    }

    fn upsert_lease_once(&self, lease: &Lease, now: i64) -> Result<Option<Until>, StoreError> {
        let mut conn = self.conn();
        let target = lease.target.to_string();
        // A restored ban (fail2ban restart) usually finds its lease exactly as it was: answer
        // from a read, without taking the write lock.
        let same: Option<Option<i64>> = conn
            .query_row(
                "SELECT until FROM leases WHERE target = ?1 AND jail = ?2 AND origin = ?3
                   AND until IS ?4 AND bantime = ?5 AND since = ?6",
                params![
                    target,
                    lease.jail,
                    lease.origin.as_str(),
                    lease.until.to_db(),
                    lease.bantime,
                    lease.since
                ],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(until) = same {
            return Ok(Some(Until::from_db(until)));
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let prev: Option<Option<i64>> = tx
            .query_row(
                "SELECT until FROM leases WHERE target = ?1 AND jail = ?2 AND origin = ?3",
                params![target, lease.jail, lease.origin.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO leases (target, jail, origin, until, bantime, since, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (target, jail, origin) DO UPDATE SET
               until = excluded.until, bantime = excluded.bantime, since = excluded.since,
               updated = excluded.updated",
            params![
                target,
                lease.jail,
                lease.origin.as_str(),
                lease.until.to_db(),
                lease.bantime,
                lease.since,
                now
            ],
        )?;
        if prev.is_none_or(|p| Until::from_db(p) != lease.until) {
            tx.execute(
                "UPDATE sink_records SET next_try = 0 WHERE target = ?1",
                params![target],
            )?;
        }
        tx.commit()?;
        Ok(prev.map(Until::from_db))
    }

    /// Removes the lease `(target, jail, origin)`; true when it existed.
    pub fn remove_lease(
        &self,
        target: &Target,
        jail: &str,
        origin: &Origin,
    ) -> Result<bool, StoreError> {
        retry_busy(|| self.remove_lease_once(target, jail, origin))
    }

    fn remove_lease_once(
        &self,
        target: &Target,
        jail: &str,
        origin: &Origin,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = target.to_string();
        let n = tx.execute(
            "DELETE FROM leases WHERE target = ?1 AND jail = ?2 AND origin = ?3",
            params![t, jail, origin.as_str()],
        )?;
        if n > 0 {
            tx.execute(
                "UPDATE sink_records SET next_try = 0 WHERE target = ?1",
                params![t],
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Deletes leases that ended before `now`; returns them (for events and logs).
    pub fn purge_expired(&self, now: i64) -> Result<Vec<Lease>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let gone = query_leases(&tx, "WHERE until IS NOT NULL AND until <= ?1", params![now])?;
        tx.execute(
            "DELETE FROM leases WHERE until IS NOT NULL AND until <= ?1",
            params![now],
        )?;
        tx.commit()?;
        Ok(gone)
    }

    /// Leases live at `now`, optionally of one jail.
    pub fn live_leases(&self, now: i64, jail: Option<&str>) -> Result<Vec<Lease>, StoreError> {
        let conn = self.conn();
        match jail {
            Some(j) => query_leases(
                &conn,
                "WHERE (until IS NULL OR until > ?1) AND jail = ?2",
                params![now, j],
            ),
            None => query_leases(&conn, "WHERE (until IS NULL OR until > ?1)", params![now]),
        }
    }

    /// Live leases of the given targets.
    pub fn live_leases_of(&self, now: i64, targets: &[Target]) -> Result<Vec<Lease>, StoreError> {
        let conn = self.conn();
        let mut out = Vec::new();
        for t in targets {
            out.extend(query_leases(
                &conn,
                "WHERE target = ?2 AND (until IS NULL OR until > ?1)",
                params![now, t.to_string()],
            )?);
        }
        Ok(out)
    }

    /// Targets some sink may have work due on, at most `limit`: a failed or unconfirmed
    /// change whose retry time has come, a live lease no sink record mentions, or a record
    /// whose target has no live lease. The inline path reconciles just these after its own
    /// targets, so what earlier calls left pending is picked up without planning everything.
    pub fn pending_targets(&self, now: i64, limit: usize) -> Result<Vec<Target>, StoreError> {
        let conn = self.conn();
        let q = "SELECT target FROM sink_records WHERE (state = 'adding' OR attempts > 0) AND next_try <= ?1
                 UNION
                 SELECT l.target FROM leases l WHERE (l.until IS NULL OR l.until > ?1)
                   AND NOT EXISTS (SELECT 1 FROM sink_records r WHERE r.target = l.target)
                 UNION
                 SELECT r.target FROM sink_records r WHERE NOT EXISTS
                   (SELECT 1 FROM leases l WHERE l.target = r.target AND (l.until IS NULL OR l.until > ?1))
                 LIMIT ?2";
        let mut st = conn.prepare_cached(q)?;
        let rows = st.query_map(params![now, limit as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(t) = Target::parse(&row?) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The next moment something becomes due: a failed change's retry time or a lease's
    /// end. `None` when nothing is scheduled.
    pub fn next_event(&self, now: i64) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT min(t) FROM (
               SELECT min(next_try) AS t FROM sink_records WHERE (state = 'adding' OR attempts > 0) AND next_try > ?1
               UNION ALL
               SELECT min(until) AS t FROM leases WHERE until > ?1)",
            params![now],
            |r| r.get(0),
        )?)
    }

    /// Live leases at `now`.
    pub fn live_lease_count(&self, now: i64) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM leases WHERE until IS NULL OR until > ?1",
            params![now],
            |r| r.get(0),
        )?)
    }

    /// Per sink: how many targets it holds, and how many records have failed attempts.
    pub fn record_counts(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT sink, sum(state = 'held'), sum(attempts > 0) FROM sink_records GROUP BY sink",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts leases (all, live or not).
    pub fn lease_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))?)
    }

    /// Every record of a sink.
    pub fn records(&self, sink: &str) -> Result<Vec<SinkRecord>, StoreError> {
        let conn = self.conn();
        query_records(&conn, "WHERE sink = ?1", params![sink])
    }

    /// The records of a sink for the given targets.
    pub fn records_of(
        &self,
        sink: &str,
        targets: &[Target],
    ) -> Result<Vec<SinkRecord>, StoreError> {
        let conn = self.conn();
        let mut out = Vec::new();
        for t in targets {
            out.extend(query_records(
                &conn,
                "WHERE sink = ?1 AND target = ?2",
                params![sink, t.to_string()],
            )?);
        }
        Ok(out)
    }

    /// Every record of every sink.
    pub fn all_records(&self) -> Result<Vec<SinkRecord>, StoreError> {
        let conn = self.conn();
        query_records(&conn, "", params![])
    }

    /// Records that the sink holds `target` (after a confirmed add or extend).
    pub fn record_held(&self, rec: &SinkRecord) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO sink_records (sink, target, state, remote_id, expires, lease, not_enforced,
                                       attempts, next_try, last_error, updated)
             VALUES (?1, ?2, 'held', ?3, ?4, ?5, ?6, 0, 0, NULL, ?7)
             ON CONFLICT (sink, target) DO UPDATE SET
               state = 'held', remote_id = excluded.remote_id, expires = excluded.expires,
               lease = excluded.lease, not_enforced = excluded.not_enforced, attempts = 0,
               next_try = 0, last_error = NULL, updated = excluded.updated",
            params![
                rec.sink,
                rec.target.to_string(),
                rec.remote_id,
                rec.expires,
                lease_json(&rec.lease),
                rec.not_enforced,
                rec.updated
            ],
        )?;
        Ok(())
    }

    /// Records a failed attempt. When no record existed, one in state `adding` is created so
    /// a later removal knows the remote side may hold the target.
    pub fn record_failure(
        &self,
        sink: &str,
        target: &Target,
        lease: &LeaseInfo,
        error: &str,
        next_try: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO sink_records (sink, target, state, remote_id, expires, lease, not_enforced,
                                       attempts, next_try, last_error, updated)
             VALUES (?1, ?2, 'adding', NULL, NULL, ?3, NULL, 1, ?4, ?5, ?6)
             ON CONFLICT (sink, target) DO UPDATE SET
               attempts = attempts + 1, next_try = excluded.next_try,
               last_error = excluded.last_error, updated = excluded.updated",
            params![sink, target.to_string(), lease_json(lease), next_try, error, now],
        )?;
        Ok(())
    }

    /// Makes a sink's failed work due at once (the sink answers again); returns how many.
    pub fn make_due(&self, sink: &str, now: i64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE sink_records SET next_try = ?2 WHERE sink = ?1 AND attempts > 0 AND next_try > ?2",
            params![sink, now],
        )?)
    }

    /// Forgets a record (after a confirmed removal, or when the remote side lost it).
    pub fn forget(&self, sink: &str, target: &Target) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM sink_records WHERE sink = ?1 AND target = ?2",
            params![sink, target.to_string()],
        )?;
        Ok(())
    }

    /// Forgets the records of sinks that are no longer configured.
    pub fn forget_sinks_except(&self, keep: &[&str]) -> Result<usize, StoreError> {
        let conn = self.conn();
        let names: Vec<String> = {
            let mut st = conn.prepare("SELECT DISTINCT sink FROM sink_records")?;
            st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let mut n = 0;
        for name in names.iter().filter(|n| !keep.contains(&n.as_str())) {
            n += conn.execute("DELETE FROM sink_records WHERE sink = ?1", params![name])?;
        }
        Ok(n)
    }

    /// Adds one to the counter `key` (kept in `meta`) and returns the new value.
    pub fn bump_counter(&self, key: &str) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "INSERT INTO meta (key, value) VALUES (?1, '1')
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
             RETURNING CAST(value AS INTEGER)",
            params![key],
            |r| r.get(0),
        )?)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

/// Runs `op`, trying again while SQLite reports the database busy or locked beyond its busy
/// timeout (it does so at once in a few WAL corner cases, e.g. while another process
/// checkpoints as it closes): opening the state and writing a lease must not fail under a
/// storm of processes.
fn retry_busy<T>(mut op: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let give_up = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match op() {
            Err(StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(..20)));
            }
            other => return other,
        }
    }
}

fn lease_json(lease: &LeaseInfo) -> String {
    serde_json::to_string(lease).unwrap_or_else(|_| "{}".to_string())
}

fn query_leases(
    conn: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Lease>, StoreError> {
    let sql = format!(
        "SELECT target, jail, origin, until, bantime, since FROM leases {filter} ORDER BY target, jail, origin"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(p, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (target, jail, origin, until, bantime, since) = row?;
        // Rows are written only from parsed targets; a row that does not parse was edited by
        // hand, and is skipped rather than trusted.
        let Ok(target) = Target::parse(&target) else {
            tracing::warn!("state: skipping lease with unparsable target {target:?}");
            continue;
        };
        out.push(Lease {
            target,
            jail,
            origin: Origin::from_db(&origin),
            until: Until::from_db(until),
            bantime,
            since,
        });
    }
    Ok(out)
}

fn query_records(
    conn: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<SinkRecord>, StoreError> {
    let sql = format!(
        "SELECT sink, target, state, remote_id, expires, lease, not_enforced, attempts, next_try,
                last_error, updated FROM sink_records {filter} ORDER BY sink, target"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(p, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, i64>(7)?,
            r.get::<_, i64>(8)?,
            r.get::<_, Option<String>>(9)?,
            r.get::<_, i64>(10)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (
            sink,
            target,
            state,
            remote_id,
            expires,
            lease,
            not_enforced,
            attempts,
            next_try,
            last_error,
            updated,
        ) = row?;
        let Ok(target) = Target::parse(&target) else {
            tracing::warn!("state: skipping sink record with unparsable target {target:?}");
            continue;
        };
        let lease = serde_json::from_str(&lease).unwrap_or(LeaseInfo {
            jail: "default".into(),
            origin: "local".into(),
            bantime: 0,
            until: None,
        });
        out.push(SinkRecord {
            sink,
            target,
            state: RecordState::parse(&state),
            remote_id,
            expires,
            lease,
            not_enforced,
            attempts,
            next_try,
            last_error,
            updated,
        });
    }
    Ok(out)
}

/// Creates `dir` (mode 0700) when missing; tightens nothing that exists.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(t: &str, jail: &str, until: Until) -> Lease {
        Lease {
            target: Target::parse(t).unwrap(),
            jail: jail.into(),
            origin: Origin::Local,
            until,
            bantime: 600,
            since: 100,
        }
    }

    #[test]
    fn database_is_private_and_leases_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            store
                .upsert_lease(&lease("192.0.2.1", "sshd", Until::At(1000)), 1)
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .upsert_lease(&lease("192.0.2.1", "sshd", Until::At(2000)), 1)
                .unwrap(),
            Some(Until::At(1000))
        );
        store
            .upsert_lease(&lease("192.0.2.1", "postfix", Until::Never), 1)
            .unwrap();
        let live = store.live_leases(1500, None).unwrap();
        assert_eq!(live.len(), 2);
        assert_eq!(
            store.live_leases(1500, Some("sshd")).unwrap()[0].until,
            Until::At(2000)
        );
        assert!(
            store
                .remove_lease(&Target::parse("192.0.2.1").unwrap(), "sshd", &Origin::Local)
                .unwrap()
        );
        assert!(
            !store
                .remove_lease(&Target::parse("192.0.2.1").unwrap(), "sshd", &Origin::Local)
                .unwrap()
        );
        assert_eq!(store.live_leases(0, None).unwrap().len(), 1);
    }

    #[test]
    fn expired_leases_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .upsert_lease(&lease("192.0.2.1", "sshd", Until::At(100)), 1)
            .unwrap();
        store
            .upsert_lease(&lease("192.0.2.2", "sshd", Until::Never), 1)
            .unwrap();
        let gone = store.purge_expired(100).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(store.lease_count().unwrap(), 1);
    }

    #[test]
    fn reopening_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path())
            .unwrap()
            .upsert_lease(&lease("2001:db8::1", "sshd", Until::Never), 1)
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.live_leases(0, None).unwrap().len(), 1);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let p = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let store = Store::open(&p).unwrap();
                    for j in 0..50 {
                        store
                            .upsert_lease(
                                &lease(
                                    &format!("198.51.100.{j}"),
                                    &format!("jail{i}"),
                                    Until::At(9999),
                                ),
                                1,
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(Store::open(dir.path()).unwrap().lease_count().unwrap(), 400);
    }

    #[test]
    fn pending_targets_are_what_no_sink_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let held = |t: &str| SinkRecord {
            sink: "s".into(),
            target: Target::parse(t).unwrap(),
            state: RecordState::Held,
            remote_id: None,
            expires: None,
            lease: LeaseInfo {
                jail: "sshd".into(),
                origin: "local".into(),
                bantime: 600,
                until: None,
            },
            not_enforced: None,
            attempts: 0,
            next_try: 0,
            last_error: None,
            updated: 1,
        };
        store
            .upsert_lease(&lease("192.0.2.1", "sshd", Until::Never), 1)
            .unwrap();
        store
            .upsert_lease(&lease("192.0.2.2", "sshd", Until::Never), 1)
            .unwrap();
        store.record_held(&held("192.0.2.1")).unwrap();
        store.record_held(&held("192.0.2.9")).unwrap();
        let mut got: Vec<String> = store
            .pending_targets(5, 10)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        got.sort();
        // 192.0.2.2 was never delivered; 192.0.2.9 has no lease left; 192.0.2.1 is settled.
        assert_eq!(got, ["192.0.2.2/32", "192.0.2.9/32"]);
        assert_eq!(store.pending_targets(5, 1).unwrap().len(), 1);
    }
}
