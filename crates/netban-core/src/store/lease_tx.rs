//! Lease writes at the level of one transaction: the shared body of a single change
//! ([`Store::upsert_lease`], [`Store::end_leases`]) and of a batch ([`super::Batch`]).
//!
//! Each write appends its outbox event in the caller's transaction (DESIGN.md, Events) and
//! makes the target's sink work due at once. Statements are prepared once per connection
//! (`prepare_cached`): a batch of a thousand peer leases parses each statement once, not a
//! thousand times.
//!
//! [`Store::upsert_lease`]: super::Store::upsert_lease
//! [`Store::end_leases`]: super::Store::end_leases

use rusqlite::{OptionalExtension, Transaction, params};

use super::LeaseFacts;
use super::events::{NewEvent, append};
use super::leases::{LeaseChange, query_leases};
use crate::lease::{Lease, Origin, Until};
use crate::outbox::EventKind;
use crate::target::Target;

/// The lease `(target, jail, origin)` as stored: `(until, bantime, since)`.
fn current(
    tx: &Transaction<'_>,
    target: &str,
    jail: &str,
    origin: &str,
) -> rusqlite::Result<Option<(Option<i64>, i64, i64)>> {
    tx.prepare_cached(
        "SELECT until, bantime, since FROM leases WHERE target = ?1 AND jail = ?2 AND origin = ?3",
    )?
    .query_row(params![target, jail, origin], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .optional()
}

/// Adds or replaces the lease `(target, jail, origin)` in `tx`, appending a `start` or
/// `extend` event when its end changes. A lease stored exactly as asked is left alone
/// (nothing written, no event); one whose end is the same but whose `bantime` or `since`
/// differ is rewritten without an event.
pub(super) fn upsert(
    tx: &Transaction<'_>,
    lease: &Lease,
    facts: &LeaseFacts,
    now: i64,
) -> rusqlite::Result<LeaseChange> {
    let target = lease.target.to_string();
    let origin = lease.origin.as_str();
    let until = lease.until.to_db();
    let prev = current(tx, &target, &lease.jail, origin)?;
    if prev == Some((until, lease.bantime, lease.since)) {
        return Ok(LeaseChange::Same);
    }
    tx.prepare_cached(
        "INSERT INTO leases (target, jail, origin, until, bantime, since, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (target, jail, origin) DO UPDATE SET
           until = excluded.until, bantime = excluded.bantime, since = excluded.since,
           updated = excluded.updated",
    )?
    .execute(params![
        target,
        lease.jail,
        origin,
        until,
        lease.bantime,
        lease.since,
        now
    ])?;
    let change = match prev.map(|(u, _, _)| Until::from_db(u)) {
        None => LeaseChange::New,
        Some(p) if p != lease.until => LeaseChange::Changed { prev: p },
        Some(_) => LeaseChange::Same,
    };
    let kind = match change {
        LeaseChange::New => EventKind::Start,
        LeaseChange::Changed { .. } => EventKind::Extend,
        LeaseChange::Same => return Ok(change),
    };
    append(tx, &NewEvent::of(lease, kind, facts, now))?;
    sinks_due(tx, &target)?;
    Ok(change)
}

/// Ends, in `tx`, the leases of `target` that match `jail` and `origin` (`None`: any),
/// appending an `end` event for each; returns the leases ended.
pub(super) fn end(
    tx: &Transaction<'_>,
    target: &Target,
    jail: Option<&str>,
    origin: Option<&Origin>,
    facts: &LeaseFacts,
    now: i64,
) -> rusqlite::Result<Vec<Lease>> {
    let t = target.to_string();
    let ended: Vec<Lease> = query_leases(tx, "WHERE target = ?1", params![t])?
        .into_iter()
        .filter(|l| jail.is_none_or(|j| l.jail == j))
        .filter(|l| origin.is_none_or(|o| &l.origin == o))
        .collect();
    for l in &ended {
        tx.prepare_cached("DELETE FROM leases WHERE target = ?1 AND jail = ?2 AND origin = ?3")?
            .execute(params![t, l.jail, l.origin.as_str()])?;
        append(tx, &NewEvent::of(l, EventKind::End, facts, now))?;
    }
    if !ended.is_empty() {
        sinks_due(tx, &t)?;
    }
    Ok(ended)
}

/// Makes the sink work on `target` due now.
fn sinks_due(tx: &Transaction<'_>, target: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE sink_records SET next_try = 0 WHERE target = ?1")?
        .execute(params![target])?;
    Ok(())
}
