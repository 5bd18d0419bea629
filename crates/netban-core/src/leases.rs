//! Lease operations: ban, unban, revoke, flush, expire, admit a peer's lease.
//!
//! Every way a lease changes goes through here — the CLI, the daemon's control socket (the
//! Python fail2ban action), and the cluster receiver — so a ban is checked, recorded, logged
//! and appended to the event outbox the same way whoever asked. Each returns what it did;
//! the caller only decides what to tell its own client. A peer's changes also come in
//! batches, one transaction for many ([`admit_peers`], [`admit_in`]; see [`peers`]).

mod peers;

pub use peers::{Admitted, PeerOp, admit_in, admit_peer_in, admit_peers, end_peer_in, revoke_in};

use crate::guard::{Guard, Refusal};
use crate::lease::{Lease, Origin, Until};
use crate::outbox::Cause;
use crate::store::{LeaseChange, LeaseFacts, Store, StoreError};
use crate::target::Target;

/// A ban to record: already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRequest {
    pub target: Target,
    pub jail: String,
    pub origin: Origin,
    pub until: Until,
    /// Seconds, -1 permanent.
    pub bantime: i64,
    /// Ban start, unix seconds.
    pub since: i64,
    pub facts: LeaseFacts,
}

/// What became of a ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanOutcome {
    /// The guard refused it; the reason was logged and recorded.
    Refused(Refusal),
    /// It had already ended (a restored ban whose time ran out).
    Ended,
    /// Recorded (or already so): deliver it.
    Recorded(LeaseChange),
}

/// Checks `req` against the guard and records the lease; logs one line with the decision.
pub fn ban(
    store: &Store,
    guard: &Guard,
    req: &BanRequest,
    now: i64,
) -> Result<BanOutcome, StoreError> {
    let (target, jail, origin) = (req.target, &req.jail, &req.origin);
    if let Err(why) = guard.check(&target) {
        log_refused(&target, jail, origin, &why);
        if let Err(e) = store.record_refusal(&target, jail, origin.as_str(), &why.0, now) {
            tracing::debug!("cannot record the refusal: {e}");
        }
        return Ok(BanOutcome::Refused(why));
    }
    if !req.until.is_live(now) {
        log_ended(&target, jail, origin, req.until);
        return Ok(BanOutcome::Ended);
    }
    let change = store.upsert_lease(&lease_of(req), &req.facts, now)?;
    log_recorded(change, req);
    Ok(BanOutcome::Recorded(change))
}

fn lease_of(req: &BanRequest) -> Lease {
    Lease {
        target: req.target,
        jail: req.jail.clone(),
        origin: req.origin.clone(),
        until: req.until,
        bantime: req.bantime,
        since: req.since,
    }
}

/// ` from PEER` for a peer's lease, nothing for a local one.
fn from(origin: &Origin) -> String {
    match origin {
        Origin::Local => String::new(),
        Origin::Peer(p) => format!(" from {p}"),
    }
}

fn log_refused(target: &Target, jail: &str, origin: &Origin, why: &Refusal) {
    let from = from(origin);
    tracing::warn!("ban {target} (jail {jail}{from}) skipped: {why}");
}

fn log_ended(target: &Target, jail: &str, origin: &Origin, until: Until) {
    let from = from(origin);
    tracing::info!("ban {target} (jail {jail}{from}) skipped: it already ended at {until}");
}

fn log_recorded(change: LeaseChange, req: &BanRequest) {
    let what = match (change, req.facts.cause) {
        (LeaseChange::Same, _) => "kept",
        (LeaseChange::Changed { .. }, _) => "updated",
        (LeaseChange::New, Cause::Restore) => "restored",
        (LeaseChange::New, _) => "banned",
    };
    let (target, jail, from) = (req.target, &req.jail, from(&req.origin));
    tracing::info!("{what} {target} (jail {jail}{from}) until {}", req.until);
}

/// Ends this host's leases of `target`: of `jail` only, or of every jail when `None`; logs
/// what was ended and what is left. Returns the leases ended.
pub fn unban(
    store: &Store,
    target: &Target,
    jail: Option<&str>,
    now: i64,
) -> Result<Vec<Lease>, StoreError> {
    let ended = store.end_leases(
        target,
        jail,
        Some(&Origin::Local),
        &LeaseFacts::cause(Cause::Unban),
        now,
    )?;
    log_end(store, target, jail, &ended, "unbanned", now)?;
    Ok(ended)
}

/// Ends every lease of `target`, whatever its jail or origin (a fleet-wide unban).
pub fn revoke(
    store: &Store,
    target: &Target,
    by: &str,
    now: i64,
) -> Result<Vec<Lease>, StoreError> {
    let ended = store.end_leases(target, None, None, &LeaseFacts::cause(Cause::Revoke), now)?;
    log_end(
        store,
        target,
        None,
        &ended,
        &format!("revoked by {by}"),
        now,
    )?;
    Ok(ended)
}

/// Ends a peer's lease of `target` in `jail`.
pub fn end_peer(
    store: &Store,
    target: &Target,
    jail: &str,
    peer: &str,
    now: i64,
) -> Result<Vec<Lease>, StoreError> {
    let origin = Origin::Peer(peer.to_string());
    let ended = store.end_leases(
        target,
        Some(jail),
        Some(&origin),
        &LeaseFacts::cause(Cause::Peer),
        now,
    )?;
    log_end(
        store,
        target,
        Some(jail),
        &ended,
        &format!("unbanned by {peer}"),
        now,
    )?;
    Ok(ended)
}

fn log_end(
    store: &Store,
    target: &Target,
    jail: Option<&str>,
    ended: &[Lease],
    verb: &str,
    now: i64,
) -> Result<(), StoreError> {
    let left = if ended.is_empty() {
        Vec::new()
    } else {
        store.live_leases_of(now, std::slice::from_ref(target))?
    };
    log_end_left(target, jail, ended, &left, verb);
    Ok(())
}

/// Logs what an unban ended, and what is `left` of the target's leases.
fn log_end_left(target: &Target, jail: Option<&str>, ended: &[Lease], left: &[Lease], verb: &str) {
    if ended.is_empty() {
        match jail {
            Some(j) => tracing::info!("unban {target} (jail {j}): no such ban"),
            None => tracing::info!("unban {target}: no such ban"),
        }
        return;
    }
    let jails: Vec<String> = ended.iter().map(describe).collect();
    if left.is_empty() {
        tracing::info!(
            "{verb} {target} ({}); no ban left, removing it from the sinks",
            jails.join(", ")
        );
    } else {
        let still: Vec<String> = left.iter().map(describe).collect();
        tracing::info!(
            "{verb} {target} ({}); still banned by {}",
            jails.join(", "),
            still.join(", ")
        );
    }
}

fn describe(l: &Lease) -> String {
    match &l.origin {
        Origin::Local => format!("jail {}", l.jail),
        Origin::Peer(p) => format!("jail {} from {p}", l.jail),
    }
}

/// fail2ban's actionflush: keeps network bans (they end when their ban time does); logs and
/// returns how many.
pub fn flush(store: &Store, jail: Option<&str>, now: i64) -> Result<usize, StoreError> {
    let n = store.live_leases(now, jail)?.len();
    let scope = jail.map_or_else(|| "all jails".to_string(), |j| format!("jail {j}"));
    tracing::info!("flush ({scope}): keeping {n} network bans; they end when their ban time does");
    Ok(n)
}

/// Ends the leases whose time ran out, appending their events; logs each.
pub fn expire(store: &Store, now: i64) -> Result<Vec<Lease>, StoreError> {
    let gone = store.purge_expired(now)?;
    for l in &gone {
        tracing::info!(
            "lease {} (jail {}, origin {}) expired",
            l.target,
            l.jail,
            l.origin
        );
    }
    Ok(gone)
}

/// Records a peer's lease after the cluster receiver checked its signature and caps: the
/// guard applies exactly as to a local ban. Many at once, in one transaction:
/// [`admit_peers`].
pub fn admit_peer(
    store: &Store,
    guard: &Guard,
    req: &BanRequest,
    now: i64,
) -> Result<BanOutcome, StoreError> {
    debug_assert!(matches!(req.origin, Origin::Peer(_)));
    ban(store, guard, req, now)
}

#[cfg(test)]
mod batch_tests;
