//! Leases in the store, and the outbox event each change appends in the same transaction.
//!
//! A restored ban (fail2ban restart) usually finds its lease exactly as it was: that is
//! answered from a read, without the write lock and without an event, so 2000 restores cost
//! 2000 reads. Any change that does happen makes the target's sink work due at once.

use rusqlite::{Connection, OptionalExtension, params};

use super::events::{NewEvent, append};
use super::{Store, StoreError, lease_tx};
use crate::lease::{Lease, Origin, Until};
use crate::outbox::{Cause, EventKind};
use crate::target::Target;

/// What fail2ban (or a peer) said about a lease change, carried into its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFacts {
    pub cause: Cause,
    pub failures: Option<i64>,
    pub port: Option<String>,
}

impl LeaseFacts {
    pub fn cause(cause: Cause) -> LeaseFacts {
        LeaseFacts {
            cause,
            failures: None,
            port: None,
        }
    }
}

/// What [`Store::upsert_lease`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    /// A lease that did not exist.
    New,
    /// The lease existed with another end.
    Changed { prev: Until },
    /// The lease existed and ends as asked: nothing written.
    Same,
}

impl Store {
    /// Adds or replaces the lease `(target, jail, origin)`, appending a `start` or `extend`
    /// event when its end changes.
    pub fn upsert_lease(
        &self,
        lease: &Lease,
        facts: &LeaseFacts,
        now: i64,
    ) -> Result<LeaseChange, StoreError> {
        let target = lease.target.to_string();
        let origin = lease.origin.as_str();
        let unchanged = self.read(|c| {
            c.query_row(
                "SELECT 1 FROM leases WHERE target = ?1 AND jail = ?2 AND origin = ?3
                   AND until IS ?4 AND bantime = ?5 AND since = ?6",
                params![
                    target,
                    lease.jail,
                    origin,
                    lease.until.to_db(),
                    lease.bantime,
                    lease.since
                ],
                |_| Ok(()),
            )
            .optional()
        })?;
        if unchanged.is_some() {
            return Ok(LeaseChange::Same);
        }
        self.write(|tx| lease_tx::upsert(tx, lease, facts, now))
    }

    /// Ends the leases of `target` that match `jail` and `origin` (`None`: any), appending an
    /// `end` event for each; returns the leases ended.
    pub fn end_leases(
        &self,
        target: &Target,
        jail: Option<&str>,
        origin: Option<&Origin>,
        facts: &LeaseFacts,
        now: i64,
    ) -> Result<Vec<Lease>, StoreError> {
        self.write(|tx| lease_tx::end(tx, target, jail, origin, facts, now))
    }

    /// Deletes leases that ended by `now`, appending an `end` event (cause `expired`) for
    /// each; returns them.
    pub fn purge_expired(&self, now: i64) -> Result<Vec<Lease>, StoreError> {
        // Most calls find nothing: look before taking the write lock.
        let any = self.read(|c| {
            c.query_row(
                "SELECT 1 FROM leases WHERE until IS NOT NULL AND until <= ?1 LIMIT 1",
                params![now],
                |_| Ok(()),
            )
            .optional()
        })?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let facts = LeaseFacts::cause(Cause::Expired);
        self.write(|tx| {
            let gone = query_leases(tx, "WHERE until IS NOT NULL AND until <= ?1", params![now])?;
            tx.execute(
                "DELETE FROM leases WHERE until IS NOT NULL AND until <= ?1",
                params![now],
            )?;
            for l in &gone {
                append(tx, &NewEvent::of(l, EventKind::End, &facts, now))?;
            }
            Ok(gone)
        })
    }

    /// Leases live at `now`, optionally of one jail.
    pub fn live_leases(&self, now: i64, jail: Option<&str>) -> Result<Vec<Lease>, StoreError> {
        self.read(|c| match jail {
            Some(j) => query_leases(
                c,
                "WHERE (until IS NULL OR until > ?1) AND jail = ?2",
                params![now, j],
            ),
            None => query_leases(c, "WHERE (until IS NULL OR until > ?1)", params![now]),
        })
    }

    /// Live leases of the given targets.
    pub fn live_leases_of(&self, now: i64, targets: &[Target]) -> Result<Vec<Lease>, StoreError> {
        self.read(|c| live_of(c, now, targets))
    }

    /// Every lease of a target, live or ended but not yet purged.
    pub fn leases_of(&self, target: &Target) -> Result<Vec<Lease>, StoreError> {
        self.read(|c| query_leases(c, "WHERE target = ?1", params![target.to_string()]))
    }

    /// Live leases at `now`.
    pub fn live_lease_count(&self, now: i64) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*) FROM leases WHERE until IS NULL OR until > ?1",
                params![now],
                |r| r.get(0),
            )
        })
    }

    /// Counts leases (all, live or not).
    pub fn lease_count(&self) -> Result<i64, StoreError> {
        self.read(|c| c.query_row("SELECT count(*) FROM leases", [], |r| r.get(0)))
    }

    /// Live leases per origin (for caps on peers): `(origin, count)`.
    pub fn live_leases_by_origin(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| by_origin(c, now))
    }
}

/// Live leases of the given targets.
pub(super) fn live_of(
    c: &Connection,
    now: i64,
    targets: &[Target],
) -> rusqlite::Result<Vec<Lease>> {
    let mut out = Vec::new();
    for t in targets {
        out.extend(query_leases(
            c,
            "WHERE target = ?2 AND (until IS NULL OR until > ?1)",
            params![now, t.to_string()],
        )?);
    }
    Ok(out)
}

/// Live leases per origin: `(origin, count)`.
pub(super) fn by_origin(c: &Connection, now: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st = c.prepare_cached(
        "SELECT origin, count(*) FROM leases WHERE until IS NULL OR until > ?1 GROUP BY origin",
    )?;
    let rows = st.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(super) fn query_leases(
    conn: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Lease>> {
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
