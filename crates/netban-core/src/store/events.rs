//! The outbox table and its consumers' cursors (see [`crate::outbox`]).
//!
//! Events are pruned once every active consumer has read them and they are older than the
//! history `netban explain` shows; a hard cap keeps a consumer that never runs from growing
//! the database without bound (it is told how many events it lost).

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::lease::Lease;
use crate::outbox::{Cause, Event, EventKind};
use crate::store::LeaseFacts;
use crate::target::Target;

/// An event about to be appended.
pub(super) struct NewEvent<'a> {
    lease: &'a Lease,
    kind: EventKind,
    facts: &'a LeaseFacts,
    at: i64,
}

impl<'a> NewEvent<'a> {
    pub(super) fn of(
        lease: &'a Lease,
        kind: EventKind,
        facts: &'a LeaseFacts,
        at: i64,
    ) -> NewEvent<'a> {
        NewEvent {
            lease,
            kind,
            facts,
            at,
        }
    }
}

/// Appends an event inside the caller's transaction (the statement is prepared once per
/// connection: a batch appends many).
pub(super) fn append(tx: &Transaction<'_>, e: &NewEvent<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (at, kind, target, jail, origin, until, bantime, cause, failures, port)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.at,
        e.kind.as_str(),
        e.lease.target.to_string(),
        e.lease.jail,
        e.lease.origin.as_str(),
        e.lease.until.to_db(),
        e.lease.bantime,
        e.facts.cause.as_str(),
        e.facts.failures,
        e.facts.port
    ])?;
    Ok(())
}

const COLUMNS: &str = "id, at, kind, target, jail, origin, until, bantime, cause, failures, port";

fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Event>> {
    let kind: String = r.get(2)?;
    let target: String = r.get(3)?;
    let cause: String = r.get(8)?;
    let (Some(kind), Ok(target), Some(cause)) = (
        EventKind::parse(&kind),
        Target::parse(&target),
        Cause::parse(&cause),
    ) else {
        return Ok(None);
    };
    Ok(Some(Event {
        id: r.get(0)?,
        at: r.get(1)?,
        kind,
        target,
        jail: r.get(4)?,
        origin: r.get(5)?,
        until: r.get(6)?,
        bantime: r.get(7)?,
        cause,
        failures: r.get(9)?,
        port: r.get(10)?,
    }))
}

impl Store {
    pub(crate) fn cursor(&self, consumer: &str) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id FROM cursors WHERE consumer = ?1",
                params![consumer],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
        })
    }

    pub(crate) fn set_cursor(&self, consumer: &str, id: i64) -> Result<(), StoreError> {
        let now = crate::clock::now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO cursors (consumer, id, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (consumer) DO UPDATE SET id = max(id, excluded.id), updated = excluded.updated",
                params![consumer, id, now],
            )?;
            Ok(())
        })
    }

    /// Up to `limit` events with an id above `after`, oldest first.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2");
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params![after, limit as i64], row_to_event)?;
            let mut out = Vec::new();
            for r in rows {
                out.extend(r?);
            }
            Ok(out)
        })
    }

    pub(crate) fn events_count_after(&self, after: i64) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*) FROM events WHERE id > ?1",
                params![after],
                |r| r.get(0),
            )
        })
    }

    /// The last `limit` events of a target, newest first.
    pub fn events_of(&self, target: &Target, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(|c| {
            let sql =
                format!("SELECT {COLUMNS} FROM events WHERE target = ?1 ORDER BY id DESC LIMIT ?2");
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params![target.to_string(), limit as i64], row_to_event)?;
            let mut out = Vec::new();
            for r in rows {
                out.extend(r?);
            }
            Ok(out)
        })
    }

    /// The newest event id (0 when none).
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        self.read(|c| c.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0)))
    }

    /// The highest event id this database ever gave (0 when none): unlike
    /// [`Store::last_event_id`], it stays when pruning removed the events themselves.
    pub fn events_numbered(&self) -> Result<i64, StoreError> {
        // `events` is AUTOINCREMENT: sqlite_sequence holds the highest id ever given, and
        // has no row until the first one.
        self.read(|c| {
            let seq: Option<i64> = c
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(seq.unwrap_or(0))
        })
    }

    /// Jails whose bans were unbanned in a burst and then restored: what fail2ban does at a
    /// stop when the jail's netban action has no `actionflush` (issue 7: a `reload` onto
    /// the Python action left the command action without it, and every stop removed every
    /// network ban). `(jail, when, unbanned, restored within 10 minutes)`, since `since`:
    /// at least 20 unbans of one jail within 30 seconds.
    pub fn mass_unbans(&self, since: i64) -> Result<Vec<(String, i64, i64, i64)>, StoreError> {
        const BURST: usize = 20;
        const WINDOW: i64 = 30;
        let unbans: Vec<(String, i64)> = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT jail, at FROM events WHERE cause = 'unban' AND origin = 'local' AND at >= ?1
                 ORDER BY jail, at LIMIT 200000",
            )?;
            let rows = st.query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut found = Vec::new();
        let mut i = 0;
        while i < unbans.len() {
            let jail = &unbans[i].0;
            let end = unbans[i..]
                .iter()
                .position(|(j, _)| j != jail)
                .map_or(unbans.len(), |p| i + p);
            let times: Vec<i64> = unbans[i..end].iter().map(|(_, t)| *t).collect();
            let mut start = 0;
            let mut k = 0;
            while k < times.len() {
                while times[k] - times[start] > WINDOW {
                    start += 1;
                }
                if k + 1 - start >= BURST {
                    // Take the whole burst, then look past it.
                    let mut last = k;
                    while last + 1 < times.len() && times[last + 1] - times[start] <= WINDOW {
                        last += 1;
                    }
                    let at = times[start];
                    let restored: i64 = self.read(|c| {
                        c.query_row(
                            "SELECT count(*) FROM events WHERE jail = ?1 AND cause = 'restore' AND at BETWEEN ?2 AND ?3",
                            params![jail, at, at + 600],
                            |r| r.get(0),
                        )
                    })?;
                    found.push((jail.clone(), at, (last + 1 - start) as i64, restored));
                    k = last + 1;
                    start = k;
                    continue;
                }
                k += 1;
            }
            i = end;
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.1));
        Ok(found)
    }

    /// Deletes events every consumer in `consumers` has read and that are older than
    /// `keep_since`; then, whatever the cursors, the oldest beyond `max_rows`. Returns how
    /// many were deleted.
    pub fn prune_events(
        &self,
        consumers: &[&str],
        keep_since: i64,
        max_rows: i64,
    ) -> Result<usize, StoreError> {
        let mut read_by_all = i64::MAX;
        for c in consumers {
            read_by_all = read_by_all.min(self.cursor(c)?);
        }
        self.write(|tx| {
            let mut n = tx.execute(
                "DELETE FROM events WHERE id <= ?1 AND at < ?2",
                params![read_by_all, keep_since],
            )?;
            let total: i64 = tx.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            if total > max_rows {
                n += tx.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?1)",
                    params![total - max_rows],
                )?;
            }
            Ok(n)
        })
    }
}
