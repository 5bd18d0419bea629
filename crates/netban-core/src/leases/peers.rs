//! A peer's lease changes, many in one transaction: how the cluster receiver catches up on
//! a hundred thousand events in seconds instead of minutes (issue 8).
//!
//! Each [`PeerOp`] does exactly what its single call does — [`super::admit_peer`] (the guard,
//! the refusal recorded, the lease, its outbox event), [`super::end_peer`] or
//! [`super::revoke`] — and logs the same line, once the transaction committed. Items are
//! applied in order, each seeing what the ones before it changed.
//!
//! [`admit_peers`] runs a slice in a transaction of its own; [`admit_in`] (or, typed,
//! [`admit_peer_in`], [`end_peer_in`], [`revoke_in`]) applies one item in a transaction the
//! caller opened with [`Store::batch`], so the caller can save what the items cover (the
//! stream cursor, the peers' marks) in that same transaction.

use super::{BanOutcome, BanRequest, lease_of, log_end_left, log_ended, log_recorded, log_refused};
use crate::guard::Guard;
use crate::lease::{Lease, Origin};
use crate::outbox::Cause;
use crate::store::{Batch, LeaseFacts, Store, StoreError};
use crate::target::Target;

/// One change of a peer's leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOp {
    /// A peer's lease starts or is extended (`origin` is the peer): as [`super::admit_peer`].
    Start(BanRequest),
    /// The peer's lease of `target` in `jail` ends: as [`super::end_peer`].
    End {
        target: Target,
        jail: String,
        peer: String,
    },
    /// Every lease of `target` ends, whatever its jail or origin (a fleet-wide unban asked by
    /// `by`): as [`super::revoke`].
    Revoke { target: Target, by: String },
}

/// What one [`PeerOp`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// A start: refused by the guard (the cause is in it), already ended, or recorded.
    Ban(BanOutcome),
    /// An end or a revoke: the leases ended (none: there was no such lease).
    Ended(Vec<Lease>),
}

impl Admitted {
    /// True when a lease changed (the sinks have work).
    pub fn changed(&self) -> bool {
        match self {
            Admitted::Ban(BanOutcome::Recorded(c)) => *c != crate::store::LeaseChange::Same,
            Admitted::Ban(_) => false,
            Admitted::Ended(l) => !l.is_empty(),
        }
    }
}

/// Applies `ops` in order in one transaction; all or nothing. Returns what each did.
pub fn admit_peers(
    store: &Store,
    guard: &Guard,
    ops: &[PeerOp],
    now: i64,
) -> Result<Vec<Admitted>, StoreError> {
    store.batch(|b| ops.iter().map(|op| admit_in(b, guard, op, now)).collect())
}

/// Applies one `op` in the caller's transaction.
pub fn admit_in(
    b: &mut Batch<'_>,
    guard: &Guard,
    op: &PeerOp,
    now: i64,
) -> Result<Admitted, StoreError> {
    match op {
        PeerOp::Start(req) => admit_peer_in(b, guard, req, now).map(Admitted::Ban),
        PeerOp::End { target, jail, peer } => {
            end_peer_in(b, target, jail, peer, now).map(Admitted::Ended)
        }
        PeerOp::Revoke { target, by } => revoke_in(b, target, by, now).map(Admitted::Ended),
    }
}

/// [`super::admit_peer`] in the caller's transaction: the same checks, writes and log line.
pub fn admit_peer_in(
    b: &mut Batch<'_>,
    guard: &Guard,
    req: &BanRequest,
    now: i64,
) -> Result<BanOutcome, StoreError> {
    debug_assert!(matches!(req.origin, Origin::Peer(_)));
    let (target, jail, origin) = (req.target, req.jail.clone(), req.origin.clone());
    if let Err(why) = guard.check(&target) {
        // Unlike a single ban, a refusal that cannot be recorded fails the batch: it is
        // taken again in full, and nothing of it is lost.
        b.record_refusal(&target, &jail, origin.as_str(), &why.0, now)?;
        let w = why.clone();
        b.after_commit(move || log_refused(&target, &jail, &origin, &w));
        return Ok(BanOutcome::Refused(why));
    }
    if !req.until.is_live(now) {
        let until = req.until;
        b.after_commit(move || log_ended(&target, &jail, &origin, until));
        return Ok(BanOutcome::Ended);
    }
    let change = b.upsert_lease(&lease_of(req), &req.facts, now)?;
    let r = req.clone();
    b.after_commit(move || log_recorded(change, &r));
    Ok(BanOutcome::Recorded(change))
}

/// [`super::end_peer`] in the caller's transaction.
pub fn end_peer_in(
    b: &mut Batch<'_>,
    target: &Target,
    jail: &str,
    peer: &str,
    now: i64,
) -> Result<Vec<Lease>, StoreError> {
    let origin = Origin::Peer(peer.to_string());
    let verb = format!("unbanned by {peer}");
    end(b, target, Some(jail), Some(&origin), Cause::Peer, verb, now)
}

/// [`super::revoke`] in the caller's transaction.
pub fn revoke_in(
    b: &mut Batch<'_>,
    target: &Target,
    by: &str,
    now: i64,
) -> Result<Vec<Lease>, StoreError> {
    end(
        b,
        target,
        None,
        None,
        Cause::Revoke,
        format!("revoked by {by}"),
        now,
    )
}

fn end(
    b: &mut Batch<'_>,
    target: &Target,
    jail: Option<&str>,
    origin: Option<&Origin>,
    cause: Cause,
    verb: String,
    now: i64,
) -> Result<Vec<Lease>, StoreError> {
    let ended = b.end_leases(target, jail, origin, &LeaseFacts::cause(cause), now)?;
    let left = if ended.is_empty() {
        Vec::new()
    } else {
        b.live_leases_of(now, std::slice::from_ref(target))?
    };
    let (t, j, e) = (*target, jail.map(str::to_string), ended.clone());
    b.after_commit(move || log_end_left(&t, j.as_deref(), &e, &left, &verb));
    Ok(ended)
}
