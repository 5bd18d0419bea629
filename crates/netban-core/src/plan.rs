//! Planning: the difference between the desired set and what a sink holds.
//!
//! Pure functions, no I/O: given the live leases, the guard, a sink's filter and its records,
//! say what to add, extend and remove. The engine ([`crate::reconcile`]) carries the plan out;
//! `netban list` and `netban status` use it to show what is pending.

use std::collections::{BTreeMap, HashMap};

use crate::config::SinkConfig;
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
}

/// The desired set of one sink: live leases it wants, that pass the guard.
pub fn desired_set(
    sink: &SinkConfig,
    leases: &[Lease],
    guard: &Guard,
    now: i64,
) -> BTreeMap<Target, Desired> {
    let mut out: BTreeMap<Target, Desired> = BTreeMap::new();
    for l in leases {
        if !l.until.is_live(now) || !sink.wants(&l.jail, l.origin.as_str()) {
            continue;
        }
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
                    },
                );
            }
        }
    }
    out.retain(|t, _| match guard.check(t) {
        Ok(()) => true,
        Err(why) => {
            tracing::debug!("{}: not enforcing {t}: {why}", sink.name());
            false
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
    },
    /// Take the target away.
    Remove {
        target: Target,
        remote_id: Option<String>,
        lease: LeaseInfo,
        /// An extra copy of an entry that stays (the record is kept).
        duplicate: bool,
    },
}

impl Step {
    pub fn target(&self) -> &Target {
        match self {
            Step::Add { desired, .. } => &desired.target,
            Step::Remove { target, .. } => target,
        }
    }
}

/// A sink's plan: the steps due now, and how many more wait for their retry time.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Steps not due yet (a failure's back-off has not passed).
    pub deferred: usize,
}

/// Compares the desired set with the records, over `scope` (all targets when `None`).
///
/// `force` ignores retry times (`netban sync`).
pub fn plan_sink(
    desired: &BTreeMap<Target, Desired>,
    records: &[SinkRecord],
    scope: Option<&[Target]>,
    now: i64,
    force: bool,
) -> Plan {
    let by_target: HashMap<&Target, &SinkRecord> = records.iter().map(|r| (&r.target, r)).collect();
    let mut plan = Plan::default();
    let mut push = |step: Step, rec: Option<&SinkRecord>| {
        if force || rec.is_none_or(|r| r.next_try <= now) {
            plan.steps.push(step);
        } else {
            plan.deferred += 1;
        }
    };
    let in_scope = |t: &Target| scope.is_none_or(|s| s.contains(t));
    for (t, d) in desired.iter().filter(|(t, _)| in_scope(t)) {
        let rec = by_target.get(t).copied();
        match rec {
            None => push(
                Step::Add {
                    desired: d.clone(),
                    remote_id: None,
                },
                None,
            ),
            Some(r) if r.state == RecordState::Adding => push(
                Step::Add {
                    desired: d.clone(),
                    remote_id: r.remote_id.clone(),
                },
                Some(r),
            ),
            Some(r) if needs_extension(r, d.until, now) => push(
                Step::Add {
                    desired: d.clone(),
                    remote_id: r.remote_id.clone(),
                },
                Some(r),
            ),
            Some(_) => {}
        }
    }
    for r in records
        .iter()
        .filter(|r| in_scope(&r.target) && !desired.contains_key(&r.target))
    {
        let remote_id = match r.state {
            RecordState::Held => r.remote_id.clone(),
            // An unconfirmed add may have reached the remote side: remove by lookup.
            RecordState::Adding => None,
        };
        push(
            Step::Remove {
                target: r.target,
                remote_id,
                lease: r.lease.clone(),
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
mod tests {
    use super::*;
    use crate::config::GuardConfig;
    use crate::lease::Origin;

    fn sink(jails: Option<&[&str]>) -> SinkConfig {
        let jails = jails
            .map(|j| format!("jails = {:?}\n", j))
            .unwrap_or_default();
        let text = format!("[[sink]]\nname=\"s\"\ntype=\"exec\"\nban=[\"/bin/true\"]\n{jails}");
        crate::config::Config::parse(&text, std::path::Path::new("t"))
            .unwrap()
            .sinks
            .remove(0)
    }

    fn guard() -> Guard {
        Guard::new(&GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        })
        .unwrap()
    }

    fn lease(t: &str, jail: &str, until: Until) -> Lease {
        Lease {
            target: Target::parse(t).unwrap(),
            jail: jail.into(),
            origin: Origin::Local,
            until,
            bantime: 60,
            since: 0,
        }
    }

    fn held(t: &str, expires: Option<i64>, updated: i64) -> SinkRecord {
        SinkRecord {
            sink: "s".into(),
            target: Target::parse(t).unwrap(),
            state: RecordState::Held,
            remote_id: Some("7".into()),
            expires,
            lease: LeaseInfo {
                jail: "sshd".into(),
                origin: "local".into(),
                bantime: 60,
                until: None,
            },
            not_enforced: None,
            attempts: 0,
            next_try: 0,
            last_error: None,
            updated,
        }
    }

    #[test]
    fn expiry_is_the_latest_lease_and_filters_apply() {
        let leases = vec![
            lease("192.0.2.1", "sshd", Until::At(500)),
            lease("192.0.2.1", "postfix", Until::At(900)),
            lease("192.0.2.2", "postfix", Until::At(900)),
            lease("192.0.2.3", "sshd", Until::At(50)),
            lease("127.0.0.1", "sshd", Until::Never),
        ];
        let d = desired_set(&sink(None), &leases, &guard(), 100);
        assert_eq!(
            d.len(),
            2,
            "expired and guarded leases are not desired: {d:?}"
        );
        let one = &d[&Target::parse("192.0.2.1").unwrap()];
        assert_eq!(one.until, Until::At(900));
        assert_eq!(one.lease.jail, "postfix");
        let d = desired_set(&sink(Some(&["sshd"])), &leases, &guard(), 100);
        assert_eq!(
            d[&Target::parse("192.0.2.1").unwrap()].until,
            Until::At(500)
        );
    }

    #[test]
    fn plan_adds_extends_removes_and_is_idempotent() {
        let leases = vec![
            lease("192.0.2.1", "sshd", Until::At(900)),
            lease("192.0.2.2", "sshd", Until::At(900)),
        ];
        let d = desired_set(&sink(None), &leases, &guard(), 100);
        let recs = vec![
            held("192.0.2.2", Some(600), 100),
            held("192.0.2.9", Some(600), 100),
        ];
        let p = plan_sink(&d, &recs, None, 100, false);
        let kinds: Vec<String> = p
            .steps
            .iter()
            .map(|s| match s {
                Step::Add { desired, remote_id } => {
                    format!("add {} {:?}", desired.target, remote_id)
                }
                Step::Remove { target, .. } => format!("remove {target}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "add 192.0.2.1/32 None",
                "add 192.0.2.2/32 Some(\"7\")",
                "remove 192.0.2.9/32"
            ]
        );
        // Everything in place: nothing to do.
        let recs = vec![
            held("192.0.2.1", Some(1200), 100),
            held("192.0.2.2", Some(900), 100),
        ];
        assert!(plan_sink(&d, &recs, None, 100, false).steps.is_empty());
    }

    #[test]
    fn permanent_bans_are_renewed_at_half_life() {
        let d = desired_set(
            &sink(None),
            &[lease("192.0.2.1", "sshd", Until::Never)],
            &guard(),
            100,
        );
        let rec = vec![held("192.0.2.1", Some(1100), 100)];
        assert!(plan_sink(&d, &rec, None, 599, false).steps.is_empty());
        assert_eq!(plan_sink(&d, &rec, None, 600, false).steps.len(), 1);
        // A sink without expiry never needs renewal.
        let rec = vec![held("192.0.2.1", None, 100)];
        assert!(plan_sink(&d, &rec, None, 1_000_000, false).steps.is_empty());
    }

    #[test]
    fn failed_work_waits_for_its_retry_time_unless_forced() {
        let d = desired_set(
            &sink(None),
            &[lease("192.0.2.1", "sshd", Until::At(900))],
            &guard(),
            100,
        );
        let mut r = held("192.0.2.1", None, 100);
        r.state = RecordState::Adding;
        r.next_try = 200;
        let p = plan_sink(&d, std::slice::from_ref(&r), None, 100, false);
        assert_eq!((p.steps.len(), p.deferred), (0, 1));
        assert_eq!(plan_sink(&d, &[r], None, 100, true).steps.len(), 1);
    }

    #[test]
    fn an_unconfirmed_add_is_removed_by_lookup() {
        let mut r = held("192.0.2.1", None, 100);
        r.state = RecordState::Adding;
        let p = plan_sink(&BTreeMap::new(), &[r], None, 100, false);
        assert!(matches!(
            &p.steps[..],
            [Step::Remove {
                remote_id: None,
                ..
            }]
        ));
    }
}
