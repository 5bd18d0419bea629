//! Planning: the difference between the desired set and what a sink holds.
//!
//! Pure functions, no I/O: given the live leases, the guard, a sink's filter and its records,
//! say what to add, extend and remove. The engine carries the plan out; `netban list`,
//! `status` and every dry run use the same plan, so what they show is what a pass would do.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::SinkCommon;
use crate::guard::Guard;
use crate::lease::{Lease, Until};
use crate::sink::LeaseInfo;
use crate::store::{RecordState, SinkRecord};
use crate::target::Target;

/// What one sink should hold for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub target: Target,
    /// The latest `until` of the target's leases that this sink enforces.
    pub until: Until,
    /// The lease that ends last (ties: the first jail by name).
    pub lease: LeaseInfo,
    /// How many distinct origins hold the target.
    pub origins: usize,
}

/// The desired set of one sink: live leases it wants, from enough origins, that pass the
/// guard (an allowlist change takes a target out of every sink, even an old ban's).
pub fn desired_set(
    sink: &SinkCommon,
    leases: &[Lease],
    guard: &Guard,
    now: i64,
) -> BTreeMap<Target, Desired> {
    let mut out: BTreeMap<Target, Desired> = BTreeMap::new();
    let mut origins: HashMap<Target, BTreeSet<&str>> = HashMap::new();
    for l in leases {
        if !l.until.is_live(now) || !sink.wants(&l.jail, l.origin.as_str()) {
            continue;
        }
        origins
            .entry(l.target)
            .or_default()
            .insert(l.origin.as_str());
        let info = LeaseInfo {
            jail: l.jail.clone(),
            origin: l.origin.as_str().to_string(),
            bantime: l.bantime,
            until: l.until.to_db(),
        };
        match out.get_mut(&l.target) {
            Some(d) if l.until > d.until || (l.until == d.until && info.jail < d.lease.jail) => {
                d.until = l.until;
                d.lease = info;
            }
            Some(_) => {}
            None => {
                out.insert(
                    l.target,
                    Desired {
                        target: l.target,
                        until: l.until,
                        lease: info,
                        origins: 0,
                    },
                );
            }
        }
    }
    for (t, d) in out.iter_mut() {
        d.origins = origins.get(t).map_or(0, BTreeSet::len);
    }
    out.retain(|t, d| {
        if d.origins < sink.min_origins {
            return false;
        }
        match guard.check(t) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!("{}: not enforcing {t}: {why}", sink.name);
                false
            }
        }
    });
    out
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Put the target in place (`remote_id` set: it is there, extend its expiry).
    Add {
        desired: Desired,
        remote_id: Option<String>,
        adopted: bool,
        foreign_owner: Option<String>,
    },
    /// Take the target away.
    Remove {
        target: Target,
        remote_id: Option<String>,
        lease: LeaseInfo,
        adopted: bool,
        /// An extra copy of an entry that stays (the record is kept).
        duplicate: bool,
    },
    /// The record's entry is not netban's to remove (the sink matched somebody else's): forget
    /// the record, leave the entry, and say so.
    Leave {
        target: Target,
        remote_id: Option<String>,
        owner: String,
        expires: Option<i64>,
    },
    /// The entry expired on the sink by itself: forget the record, no call.
    Forget { target: Target },
}

impl Step {
    pub fn target(&self) -> &Target {
        match self {
            Step::Add { desired, .. } => &desired.target,
            Step::Remove { target, .. } | Step::Leave { target, .. } | Step::Forget { target } => {
                target
            }
        }
    }

    /// True for the steps that call the sink.
    pub fn calls_sink(&self) -> bool {
        matches!(self, Step::Add { .. } | Step::Remove { .. })
    }
}

/// A sink's plan: the steps due now, and how many more wait for their retry time.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Steps not due yet (a failure's back-off has not passed).
    pub deferred: usize,
}

/// How to plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub now: i64,
    /// Ignore retry times (`netban sync`).
    pub force: bool,
    /// Entries vanish at their expiry by themselves (nft timeouts).
    pub self_expiring: bool,
}

/// Compares the desired set with the records, over `scope` (all targets when `None`).
pub fn plan_sink(
    desired: &BTreeMap<Target, Desired>,
    records: &[SinkRecord],
    scope: Option<&[Target]>,
    opts: PlanOptions,
) -> Plan {
    let now = opts.now;
    let by_target: HashMap<&Target, &SinkRecord> = records.iter().map(|r| (&r.target, r)).collect();
    let mut plan = Plan::default();
    let mut push = |step: Step, rec: Option<&SinkRecord>| {
        if opts.force || rec.is_none_or(|r| r.next_try <= now) || !step.calls_sink() {
            plan.steps.push(step);
        } else {
            plan.deferred += 1;
        }
    };
    let in_scope = |t: &Target| scope.is_none_or(|s| s.contains(t));
    let gone_by_itself = |r: &SinkRecord| {
        opts.self_expiring && r.state == RecordState::Held && r.expires.is_some_and(|e| e <= now)
    };
    for (t, d) in desired.iter().filter(|(t, _)| in_scope(t)) {
        let add = |r: Option<&SinkRecord>, remote_id: Option<String>| Step::Add {
            desired: d.clone(),
            remote_id,
            adopted: r.is_some_and(|r| r.adopted),
            foreign_owner: r.and_then(|r| r.foreign_owner.clone()),
        };
        match by_target.get(t).copied() {
            None => push(add(None, None), None),
            // The entry vanished at its expiry although a lease is live: put it back.
            Some(r) if gone_by_itself(r) => push(add(Some(r), None), Some(r)),
            Some(r) if r.state == RecordState::Adding => {
                push(add(Some(r), r.remote_id.clone()), Some(r))
            }
            Some(r) if needs_extension(r, d.until, now) => {
                push(add(Some(r), r.remote_id.clone()), Some(r))
            }
            Some(_) => {}
        }
    }
    for r in records
        .iter()
        .filter(|r| in_scope(&r.target) && !desired.contains_key(&r.target))
    {
        if gone_by_itself(r) {
            push(Step::Forget { target: r.target }, Some(r));
            continue;
        }
        if let Some(owner) = &r.foreign_owner {
            push(
                Step::Leave {
                    target: r.target,
                    remote_id: r.remote_id.clone(),
                    owner: owner.clone(),
                    expires: r.expires,
                },
                Some(r),
            );
            continue;
        }
        let remote_id = match r.state {
            RecordState::Held => r.remote_id.clone(),
            // An unconfirmed add may have reached the remote side: remove by lookup (or by
            // the id repair found).
            RecordState::Adding => r.remote_id.clone(),
        };
        push(
            Step::Remove {
                target: r.target,
                remote_id,
                lease: r.lease.clone(),
                adopted: r.adopted,
                duplicate: false,
            },
            Some(r),
        );
    }
    plan
}

/// True when a held entry's remote expiry must be pushed out: it ends before the leases do,
/// or (permanent bans) more than half of the lifetime the sink gave it has passed.
fn needs_extension(rec: &SinkRecord, until: Until, now: i64) -> bool {
    let Some(expires) = rec.expires else {
        return false;
    };
    match until {
        Until::At(u) => expires < u,
        Until::Never => {
            let lifetime = (expires - rec.updated).max(0);
            now >= rec.updated + lifetime / 2
        }
    }
}

#[cfg(test)]
mod tests;
