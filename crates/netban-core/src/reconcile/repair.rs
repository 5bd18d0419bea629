//! Repair: what to make of what a sink really holds.
//!
//! A pure function from the records, the desired set and the sink's listing to the record
//! changes and extra steps that make the records true again. The driver only says who made
//! each entry ([`Owner`]); the policy is decided here, in one place:
//!
//! | entry                          | record  | desired | netban                              |
//! |--------------------------------|---------|---------|-------------------------------------|
//! | any                            | held    | -       | updates expiry and state            |
//! | gone (expiry passed, self-expiring) | held | -    | forgets it quietly                  |
//! | gone                           | held    | -       | forgets it (re-added if desired)    |
//! | this instance's                | adding  | -       | learns its id (so removal finds it) |
//! | this instance's, a duplicate   | held    | -       | removes the extra copy              |
//! | this instance's or this host's | none    | yes     | adopts it                           |
//! | this instance's or this host's | none    | no      | keeps it until its expiry, loudly   |
//! | a removable host's (hub peer)  | none    | yes/no  | adopts / removes it                 |
//! | another host's, foreign        | none    | -       | never touches it                    |
//!
//! "This host's" means marked with this `host_id` by another state database: a wiped or
//! restored state, or a clone. Such an entry is never deleted (issue 6: a fresh state once
//! deleted every rule fail2ban still considered banned); it is adopted when fail2ban sends
//! the ban again, and otherwise left to expire.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::plan::{Desired, Step};
use crate::owner::Owner;
use crate::sink::{HeldEntry, LeaseInfo};
use crate::store::{Kept, RecordState, SinkRecord};
use crate::target::Target;

/// Whose entries besides its own an engine may adopt and remove.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// This host's id: entries marked with it by another state are adopted, never removed.
    pub host_id: String,
    /// Hosts whose entries are treated as this host's own, removal included (the other hub
    /// of an `exclusive` sink).
    pub removable: HashSet<String>,
}

/// What repair decided.
#[derive(Debug, Clone, Default)]
pub struct Repair {
    /// Records to write (updated, adopted).
    pub record: Vec<SinkRecord>,
    /// Records to forget (the entry vanished).
    pub forget: Vec<Target>,
    /// Extra removals (duplicates, removable hosts' entries).
    pub steps: Vec<Step>,
    /// Entries netban leaves on the sink on purpose.
    pub kept: Vec<Kept>,
    /// How many things were repaired (for the report): vanished, adopted, duplicates found.
    pub repaired: usize,
}

/// Compares the records with the listing. `now` dates adoptions.
pub fn repair(
    sink: &str,
    desired: &BTreeMap<Target, Desired>,
    records: &[SinkRecord],
    listed: &[HeldEntry],
    policy: &Ownership,
    self_expiring: bool,
    now: i64,
) -> Repair {
    let mut out = Repair::default();
    let known: HashMap<Target, &SinkRecord> = records.iter().map(|r| (r.target, r)).collect();
    // Per target, the entries the sink lists; the first stands for it.
    let mut by_target: BTreeMap<Target, Vec<&HeldEntry>> = BTreeMap::new();
    for h in listed {
        by_target.entry(h.target).or_default().push(h);
    }
    for rec in records.iter().filter(|r| r.state == RecordState::Held) {
        match by_target.get(&rec.target) {
            None => {
                let expired = rec.expires.is_some_and(|e| e <= now);
                if !(self_expiring && expired) {
                    let wanted = desired.contains_key(&rec.target);
                    tracing::warn!(
                        "{sink}: {} vanished from the sink (removed behind netban's back?); {}",
                        rec.target,
                        if wanted {
                            "adding it again"
                        } else {
                            "forgetting it"
                        }
                    );
                    // Put back, it counts once, as an add (issue 7: it was counted twice).
                    if !wanted {
                        out.repaired += 1;
                    }
                }
                out.forget.push(rec.target);
            }
            Some(entries) => {
                // The entry netban recorded, or else the first one listed.
                let main = entries
                    .iter()
                    .find(|h| h.remote_id.is_some() && h.remote_id == rec.remote_id)
                    .or_else(|| entries.first())
                    .copied();
                // An entry recorded as someone else's that now reads as this host's (an
                // `adopt_comments` pattern added since): adopted from now on.
                let now_ours = main.is_some_and(|h| {
                    rec.foreign_owner.is_some()
                        && matches!(&h.owner, Owner::Host(id)
                            if *id == policy.host_id || policy.removable.contains(id))
                });
                if let Some(h) = main
                    && (now_ours
                        || h.expires != rec.expires
                        || h.not_enforced != rec.not_enforced
                        || (h.remote_id.is_some() && h.remote_id != rec.remote_id))
                {
                    let mut r = rec.clone();
                    if now_ours {
                        tracing::info!(
                            "{sink}: {} on the sink is now this host's ({}): adopted",
                            rec.target,
                            h.owner.describe()
                        );
                        r.foreign_owner = None;
                        r.adopted = true;
                    }
                    r.expires = h.expires;
                    r.not_enforced = h.not_enforced.clone();
                    if h.remote_id.is_some() {
                        r.remote_id = h.remote_id.clone();
                    }
                    r.updated = now;
                    out.record.push(r);
                    out.repaired += 1;
                }
                // Extra copies this instance made (racing adds): remove them.
                for extra in entries.iter().filter(|h| {
                    main.is_none_or(|m| !std::ptr::eq(**h, m))
                        && h.owner == Owner::This
                        && h.remote_id.is_some()
                }) {
                    out.steps.push(Step::Remove {
                        target: extra.target,
                        remote_id: extra.remote_id.clone(),
                        lease: rec.lease.clone(),
                        adopted: false,
                        duplicate: true,
                    });
                }
            }
        }
    }
    for (target, entries) in &by_target {
        let Some(h) = entries.first().copied() else {
            continue;
        };
        match known.get(target) {
            Some(r) if r.state == RecordState::Held => continue,
            Some(r) => {
                // An unconfirmed add that did happen: learn its id, so the plan's removal
                // (or the next extend) finds it.
                if h.owner == Owner::This && h.remote_id.is_some() && h.remote_id != r.remote_id {
                    let mut r = (*r).clone();
                    r.remote_id = h.remote_id.clone();
                    out.record.push(r);
                }
                continue;
            }
            None => {}
        }
        let this_host = match &h.owner {
            Owner::This => true,
            Owner::Host(id) => *id == policy.host_id,
            Owner::Foreign => false,
        };
        let removable = matches!(&h.owner, Owner::Host(id) if policy.removable.contains(id));
        if h.expires.is_some_and(|e| e <= now) && self_expiring {
            continue;
        }
        match desired.get(target) {
            Some(d) if this_host || removable => {
                let mut rec = SinkRecord::held(sink, *target, d.lease.clone(), now);
                rec.remote_id = h.remote_id.clone();
                rec.expires = h.expires;
                rec.not_enforced = h.not_enforced.clone();
                rec.adopted = h.owner != Owner::This;
                tracing::info!(
                    "{sink}: adopted {target} already on the sink ({})",
                    h.owner.describe()
                );
                out.record.push(rec);
                out.repaired += 1;
            }
            None if removable => {
                tracing::info!(
                    "{sink}: {target} is on the sink ({}) but not banned; removing it",
                    h.owner.describe()
                );
                out.steps.push(Step::Remove {
                    target: *target,
                    remote_id: h.remote_id.clone(),
                    lease: LeaseInfo::unknown(),
                    adopted: true,
                    duplicate: false,
                });
            }
            None if this_host => out.kept.push(Kept {
                sink: sink.to_string(),
                target: *target,
                remote_id: h.remote_id.clone(),
                owner: h.owner.describe(),
                reason: "netban on this host made it, but this state has no record of it \
                         (a wiped or restored state, or a clone with the same host_id); it is \
                         kept until it expires, and adopted if fail2ban bans the address again"
                    .to_string(),
                expires: h.expires,
                noticed: now,
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
