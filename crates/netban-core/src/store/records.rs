//! Sink records: what netban knows each sink holds, and the work pending on it.
//!
//! A record is written only from what the remote side confirmed (`held`), or before an add
//! is tried (`adding`: the remote side may or may not hold the target, so a later removal
//! looks it up). Writing `adding` before the call is what lets a `kill -9` in the middle of
//! a batch leave no orphan: the next pass knows the add may have happened.

use rusqlite::{Connection, params};

use super::{Store, StoreError};
use crate::sink::{LeaseInfo, Retry};
use crate::target::Target;

/// One change to a sink's records, from one outcome of a batch.
#[derive(Debug, Clone)]
pub enum RecordOp {
    /// The sink confirmed it holds the target.
    Held(SinkRecord),
    /// A change failed; count the attempt and schedule the next.
    Failed {
        target: Target,
        lease: LeaseInfo,
        error: String,
        retry: Retry,
    },
    /// The entry is gone (removed, or vanished): forget the record.
    Forget(Target),
    /// Try again no earlier than `until`, without counting a failure.
    Defer { target: Target, until: i64 },
}

/// Whether the sink confirmed it holds a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// The sink confirmed it holds the target.
    Held,
    /// An add was tried (or is about to be) and not confirmed.
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
    /// netban took the entry over from another state; it removes it like its own.
    pub adopted: bool,
    /// The sink matched an entry somebody else made (who, as far as netban can tell):
    /// netban never removes it.
    pub foreign_owner: Option<String>,
    pub attempts: i64,
    pub next_try: i64,
    pub last_error: Option<String>,
    pub updated: i64,
}

impl SinkRecord {
    /// A record of an entry the sink confirmed.
    pub fn held(sink: &str, target: Target, lease: LeaseInfo, now: i64) -> SinkRecord {
        SinkRecord {
            sink: sink.to_string(),
            target,
            state: RecordState::Held,
            remote_id: None,
            expires: None,
            lease,
            not_enforced: None,
            adopted: false,
            foreign_owner: None,
            attempts: 0,
            next_try: 0,
            last_error: None,
            updated: now,
        }
    }
}

const COLUMNS: &str = "sink, target, state, remote_id, expires, lease, not_enforced, adopted, \
                       foreign_owner, attempts, next_try, last_error, updated";

impl Store {
    /// Every record of a sink.
    pub fn records(&self, sink: &str) -> Result<Vec<SinkRecord>, StoreError> {
        self.read(|c| query_records(c, "WHERE sink = ?1", params![sink]))
    }

    /// The records of a sink for the given targets.
    pub fn records_of(
        &self,
        sink: &str,
        targets: &[Target],
    ) -> Result<Vec<SinkRecord>, StoreError> {
        self.read(|c| {
            let mut out = Vec::new();
            for t in targets {
                out.extend(query_records(
                    c,
                    "WHERE sink = ?1 AND target = ?2",
                    params![sink, t.to_string()],
                )?);
            }
            Ok(out)
        })
    }

    /// Every sink's record of one target.
    pub fn records_of_target(&self, target: &Target) -> Result<Vec<SinkRecord>, StoreError> {
        self.read(|c| query_records(c, "WHERE target = ?1", params![target.to_string()]))
    }

    /// Records that the sink holds `rec.target` (after a confirmed add or extend, or an
    /// adoption).
    pub fn record_held(&self, rec: &SinkRecord) -> Result<(), StoreError> {
        self.write(|tx| write_held(tx, rec))
    }

    /// Applies the record changes of one batch in one transaction. `delay(retry, attempts)`
    /// gives the seconds to wait after a failure. Returns the attempt count of each
    /// `Failed` op, in order.
    pub fn apply_record_ops(
        &self,
        sink: &str,
        ops: &[RecordOp],
        delay: &(dyn Fn(Retry, i64) -> i64 + Sync),
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut attempts = Vec::new();
            for op in ops {
                match op {
                    RecordOp::Held(rec) => write_held(tx, rec)?,
                    RecordOp::Failed {
                        target,
                        lease,
                        error,
                        retry,
                    } => {
                        let n: i64 = tx.query_row(
                            "INSERT INTO sink_records (sink, target, state, lease, attempts, next_try, last_error, updated)
                             VALUES (?1, ?2, 'adding', ?3, 1, 0, ?4, ?5)
                             ON CONFLICT (sink, target) DO UPDATE SET
                               attempts = attempts + 1, last_error = excluded.last_error, updated = excluded.updated
                             RETURNING attempts",
                            params![sink, target.to_string(), lease_json(lease), error, now],
                            |r| r.get(0),
                        )?;
                        tx.execute(
                            "UPDATE sink_records SET next_try = ?3 WHERE sink = ?1 AND target = ?2",
                            params![sink, target.to_string(), now + delay(*retry, n)],
                        )?;
                        attempts.push(n);
                    }
                    RecordOp::Forget(t) => {
                        tx.execute(
                            "DELETE FROM sink_records WHERE sink = ?1 AND target = ?2",
                            params![sink, t.to_string()],
                        )?;
                    }
                    RecordOp::Defer { target, until } => {
                        tx.execute(
                            "UPDATE sink_records SET next_try = ?3 WHERE sink = ?1 AND target = ?2",
                            params![sink, target.to_string(), until],
                        )?;
                    }
                }
            }
            Ok(attempts)
        })
    }

    /// Before adds are tried: a record in state `adding` for each target that has none, so
    /// an add that reaches the remote side is never forgotten (one transaction per batch).
    pub fn record_adding(
        &self,
        sink: &str,
        adds: &[(Target, &LeaseInfo)],
        now: i64,
    ) -> Result<(), StoreError> {
        if adds.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut st = tx.prepare_cached(
                "INSERT INTO sink_records (sink, target, state, lease, attempts, next_try, updated)
                 VALUES (?1, ?2, 'adding', ?3, 0, 0, ?4)
                 ON CONFLICT (sink, target) DO NOTHING",
            )?;
            for (t, lease) in adds {
                st.execute(params![sink, t.to_string(), lease_json(lease), now])?;
            }
            Ok(())
        })
    }

    /// Makes a sink's failed work due at once (the sink answers again); returns how many.
    pub fn make_due(&self, sink: &str, now: i64) -> Result<usize, StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sink_records SET next_try = ?2 WHERE sink = ?1 AND attempts > 0 AND next_try > ?2",
                params![sink, now],
            )
        })
    }

    /// Forgets a record (after a confirmed removal, or when the remote side lost it).
    pub fn forget(&self, sink: &str, target: &Target) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM sink_records WHERE sink = ?1 AND target = ?2",
                params![sink, target.to_string()],
            )?;
            Ok(())
        })
    }

    /// Forgets the records of sinks that are no longer configured.
    pub fn forget_sinks_except(&self, keep: &[&str]) -> Result<usize, StoreError> {
        self.write(|tx| {
            let names: Vec<String> = {
                let mut st = tx.prepare("SELECT DISTINCT sink FROM sink_records")?;
                st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            let mut n = 0;
            for name in names.iter().filter(|n| !keep.contains(&n.as_str())) {
                n += tx.execute("DELETE FROM sink_records WHERE sink = ?1", params![name])?;
            }
            Ok(n)
        })
    }

    /// Per sink: how many targets it holds, and how many records have failed attempts.
    pub fn record_counts(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT sink, sum(state = 'held'), sum(attempts > 0) FROM sink_records GROUP BY sink",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// Targets some sink may have work due on, at most `limit`: a failed or unconfirmed
    /// change whose retry time has come, a live lease no sink record mentions, or a record
    /// whose target has no live lease. The inline path reconciles just these after its own
    /// targets, so what earlier calls left pending is picked up without planning everything.
    pub fn pending_targets(&self, now: i64, limit: usize) -> Result<Vec<Target>, StoreError> {
        let rows: Vec<String> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT target FROM sink_records WHERE (state = 'adding' OR attempts > 0) AND next_try <= ?1
                 UNION
                 SELECT l.target FROM leases l WHERE (l.until IS NULL OR l.until > ?1)
                   AND NOT EXISTS (SELECT 1 FROM sink_records r WHERE r.target = l.target)
                 UNION
                 SELECT r.target FROM sink_records r WHERE NOT EXISTS
                   (SELECT 1 FROM leases l WHERE l.target = r.target AND (l.until IS NULL OR l.until > ?1))
                 LIMIT ?2",
            )?;
            let rows = st.query_map(params![now, limit as i64], |r| r.get::<_, String>(0))?;
            rows.collect()
        })?;
        Ok(rows.iter().filter_map(|t| Target::parse(t).ok()).collect())
    }

    /// The next moment something becomes due: a failed change's retry time or a lease's
    /// end. `None` when nothing is scheduled.
    pub fn next_due(&self, now: i64) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT min(t) FROM (
                   SELECT min(next_try) AS t FROM sink_records WHERE (state = 'adding' OR attempts > 0) AND next_try > ?1
                   UNION ALL
                   SELECT min(until) AS t FROM leases WHERE until > ?1)",
                params![now],
                |r| r.get(0),
            )
        })
    }
}

fn write_held(tx: &rusqlite::Transaction<'_>, rec: &SinkRecord) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sink_records (sink, target, state, remote_id, expires, lease, not_enforced,
                                   adopted, foreign_owner, attempts, next_try, last_error, updated)
         VALUES (?1, ?2, 'held', ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, NULL, ?9)
         ON CONFLICT (sink, target) DO UPDATE SET
           state = 'held', remote_id = excluded.remote_id, expires = excluded.expires,
           lease = excluded.lease, not_enforced = excluded.not_enforced,
           adopted = excluded.adopted, foreign_owner = excluded.foreign_owner,
           attempts = 0, next_try = 0, last_error = NULL, updated = excluded.updated",
        params![
            rec.sink,
            rec.target.to_string(),
            rec.remote_id,
            rec.expires,
            lease_json(&rec.lease),
            rec.not_enforced,
            rec.adopted,
            rec.foreign_owner,
            rec.updated
        ],
    )?;
    Ok(())
}

fn lease_json(lease: &LeaseInfo) -> String {
    serde_json::to_string(lease).unwrap_or_else(|_| "{}".to_string())
}

fn query_records(
    conn: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<Vec<SinkRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM sink_records {filter} ORDER BY sink, target");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(p, |r| {
        let target: String = r.get(1)?;
        let state: String = r.get(2)?;
        let lease: String = r.get(5)?;
        Ok((
            target,
            state,
            lease,
            SinkRecord {
                sink: r.get(0)?,
                target: Target::from_net(ipnet::IpNet::default()),
                state: RecordState::Held,
                remote_id: r.get(3)?,
                expires: r.get(4)?,
                lease: LeaseInfo::unknown(),
                not_enforced: r.get(6)?,
                adopted: r.get(7)?,
                foreign_owner: r.get(8)?,
                attempts: r.get(9)?,
                next_try: r.get(10)?,
                last_error: r.get(11)?,
                updated: r.get(12)?,
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (target, state, lease, mut rec) = row?;
        let Ok(target) = Target::parse(&target) else {
            tracing::warn!("state: skipping sink record with unparsable target {target:?}");
            continue;
        };
        rec.target = target;
        rec.state = RecordState::parse(&state);
        rec.lease = serde_json::from_str(&lease).unwrap_or_else(|_| LeaseInfo::unknown());
        out.push(rec);
    }
    Ok(out)
}
