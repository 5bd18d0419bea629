//! What each sink holds and what is pending, per target: the shared picture behind `list`,
//! `status`, `explain` and the dashboard. Computed from the store alone, no network.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::reconcile::Engine;
use crate::reconcile::plan::Step;
use crate::store::{RecordState, SinkRecord, StoreError};
use crate::target::Target;

/// One target on one sink, as netban believes it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Entry {
    /// The sink confirmed it holds the target.
    InPlace {
        remote_id: Option<String>,
        expires: Option<i64>,
        not_enforced: Option<String>,
        /// netban took the entry over from another state (a migration, a lost state).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        adopted: bool,
        /// Somebody else made the entry; netban leaves it in place at the last unban.
        #[serde(skip_serializing_if = "Option::is_none")]
        foreign_owner: Option<String>,
    },
    /// Not delivered yet (or being extended).
    Pending {
        since: i64,
        attempts: i64,
        next_try: i64,
        error: Option<String>,
    },
    /// No live lease is left; removal pending.
    Removing {
        since: i64,
        attempts: i64,
        next_try: i64,
        error: Option<String>,
    },
}

impl Entry {
    pub fn short(&self) -> String {
        match self {
            Entry::InPlace {
                not_enforced: Some(_),
                ..
            } => "NOT ENFORCED".into(),
            Entry::InPlace {
                foreign_owner: Some(_),
                ..
            } => "in place (not netban's)".into(),
            Entry::InPlace { adopted: true, .. } => "in place (adopted)".into(),
            Entry::InPlace { .. } => "in place".into(),
            Entry::Pending { attempts: 0, .. } => "pending".into(),
            Entry::Pending { attempts, .. } => format!("failing ({attempts})"),
            Entry::Removing { attempts: 0, .. } => "removing".into(),
            Entry::Removing { attempts, .. } => format!("removing, failing ({attempts})"),
        }
    }

    pub fn in_place(&self) -> bool {
        matches!(self, Entry::InPlace { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SinkView {
    pub name: String,
    pub entries: BTreeMap<Target, Entry>,
}

pub fn sinks(engine: &Engine, now: i64) -> Result<Vec<SinkView>, StoreError> {
    let mut out = Vec::new();
    for crate::reconcile::SinkPlan {
        name,
        desired,
        records,
        plan,
    } in engine.plans(now)?
    {
        let recs: BTreeMap<Target, &SinkRecord> = records.iter().map(|r| (r.target, r)).collect();
        // Looked up once per desired target: a scan of the steps for each was quadratic
        // (20,000 targets with 2,000 steps: 40 million comparisons per sink and request).
        let planned: HashSet<&Target> = plan
            .steps
            .iter()
            .filter(|s| s.calls_sink())
            .map(|s| s.target())
            .collect();
        let mut entries = BTreeMap::new();
        for d in desired.values() {
            let rec = recs.get(&d.target);
            let planned = planned.contains(&d.target);
            let entry = match rec {
                Some(r) if r.state == RecordState::Held && !planned => Entry::InPlace {
                    remote_id: r.remote_id.clone(),
                    expires: r.expires,
                    not_enforced: r.not_enforced.clone(),
                    adopted: r.adopted,
                    foreign_owner: r.foreign_owner.clone(),
                },
                Some(r) => pending(r),
                None => Entry::Pending {
                    since: now,
                    attempts: 0,
                    next_try: 0,
                    error: None,
                },
            };
            entries.insert(d.target, entry);
        }
        for step in &plan.steps {
            if let Step::Remove { target, .. } = step {
                let r = recs.get(target);
                entries.insert(
                    *target,
                    Entry::Removing {
                        since: r.map_or(now, |r| r.updated),
                        attempts: r.map_or(0, |r| r.attempts),
                        next_try: r.map_or(0, |r| r.next_try),
                        error: r.and_then(|r| r.last_error.clone()),
                    },
                );
            }
        }
        out.push(SinkView { name, entries });
    }
    Ok(out)
}

fn pending(r: &SinkRecord) -> Entry {
    Entry::Pending {
        since: r.updated,
        attempts: r.attempts,
        next_try: r.next_try,
        error: r.last_error.clone(),
    }
}

/// One sink in numbers (`netban status`, the dashboard's `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkSummary {
    pub sink: String,
    pub in_place: usize,
    pub pending: usize,
    pub removing: usize,
    /// Changes tried at least once and not done yet.
    pub failing: usize,
    pub not_enforced: usize,
    /// Entries left on the sink on purpose (see [`crate::store::Kept`]).
    pub kept: usize,
    /// Seconds since the oldest change still to do was wanted.
    pub oldest_pending_age: Option<i64>,
    /// The last error of a failing change, credentials redacted.
    pub last_error: Option<String>,
}

impl SinkView {
    /// The counts of this sink at `now`; `kept` entries are counted by the caller's list.
    pub fn summary(&self, kept: &[crate::store::Kept], now: i64) -> SinkSummary {
        let mut s = SinkSummary {
            sink: self.name.clone(),
            kept: kept.iter().filter(|k| k.sink == self.name).count(),
            ..SinkSummary::default()
        };
        let mut oldest: Option<i64> = None;
        for e in self.entries.values() {
            let (since, attempts, error) = match e {
                Entry::InPlace { not_enforced, .. } => {
                    s.in_place += 1;
                    s.not_enforced += usize::from(not_enforced.is_some());
                    continue;
                }
                Entry::Pending {
                    since,
                    attempts,
                    error,
                    ..
                } => {
                    s.pending += 1;
                    (since, attempts, error)
                }
                Entry::Removing {
                    since,
                    attempts,
                    error,
                    ..
                } => {
                    s.removing += 1;
                    (since, attempts, error)
                }
            };
            if *attempts > 0 {
                s.failing += 1;
                if let Some(e) = error {
                    s.last_error = Some(crate::config::redact_userinfo(e));
                }
            }
            oldest = Some(oldest.map_or(*since, |o| o.min(*since)));
        }
        s.oldest_pending_age = oldest.map(|o| (now - o).max(0));
        s
    }
}
