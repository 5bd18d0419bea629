//! One pass over one sink: plan, repair, then apply the plan batch by batch.
//!
//! Before a batch is sent, every add without a record gets one in state `adding` (so a crash
//! mid-batch leaves no orphan); each outcome is recorded as the sink confirmed it, a batch's
//! records in one transaction. A rejected all-or-nothing batch ([`Commit::Atomic`]) is split
//! in halves until the rejected changes stand alone; a batch that failed entirely with
//! transient errors means the sink is unavailable, and the rest waits for the next try.
//! Recording the outcomes is [`super::record`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::plan::{PlanOptions, Step, desired_set, plan_sink};
use super::repair::repair;
use super::{Engine, Scope, SinkReport, SinkSlot};
use crate::sink::{Change, Commit, Outcome, Retry, Sink, SinkError};
use crate::store::{Kept, RecordOp, SinkRecord, StoreError};

/// A pass in progress.
pub(super) struct Pass<'a> {
    pub engine: &'a Engine,
    pub slot: &'a SinkSlot,
    pub sink: &'a dyn Sink,
    pub opts: super::PassOptions,
    /// A preview's pretended lease change.
    pub edit: Option<&'a super::LeaseEdit>,
}

impl Pass<'_> {
    pub(super) fn name(&self) -> &str {
        self.slot.name()
    }

    pub async fn run(&self, scope: &Scope, report: &mut SinkReport) -> Result<(), StoreError> {
        let name = self.name().to_string();
        let e = self.engine;
        let now = super::now();
        let mut leases = e.leases(scope, now).await?;
        if let Some(edit) = self.edit {
            edit.apply(&mut leases);
        }
        let desired = desired_set(&self.slot.def.common, &leases, &e.guard(), now);
        let mut records = match scope.targets() {
            None => {
                let n = name.clone();
                e.db(move |s| s.records(&n)).await?
            }
            Some(ts) => {
                let (n, ts) = (name.clone(), ts.to_vec());
                e.db(move |s| s.records_of(&n, &ts)).await?
            }
        };
        let self_expiring = self.sink.self_expiring();
        let mut extra = Vec::new();
        if self.opts.repair && scope.targets().is_none() {
            match self.sink.held(self.opts.deadline).await {
                Ok(Some(listed)) => {
                    let policy = e
                        .ownership
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    let r = repair(
                        &name,
                        &desired,
                        &records,
                        &listed,
                        &policy,
                        self_expiring,
                        now,
                    );
                    report.repaired = r.repaired;
                    report.kept = r.kept.len();
                    extra = r.steps.clone();
                    // What the records would be after the repair: the plan is made from it
                    // whether or not this is a dry run, so a dry run says what a real run does.
                    for t in &r.forget {
                        records.retain(|rec| rec.target != *t);
                    }
                    for rec in &r.record {
                        records.retain(|x| x.target != rec.target);
                        records.push(rec.clone());
                    }
                    if self.opts.dry_run {
                        for k in &r.kept {
                            report
                                .actions
                                .push(format!("keep {} ({}): {}", k.target, k.owner, k.reason));
                        }
                    } else {
                        let still: Vec<_> = listed
                            .iter()
                            .map(|h| (h.target, h.remote_id.clone()))
                            .collect();
                        let n = name.clone();
                        e.db(move |s| {
                            let mut ops: Vec<RecordOp> =
                                r.forget.iter().map(|t| RecordOp::Forget(*t)).collect();
                            ops.extend(r.record.iter().cloned().map(RecordOp::Held));
                            s.apply_record_ops(&n, &ops, &|_, _| 0, now)?;
                            for rec in &r.record {
                                s.forget_kept(&n, &rec.target)?;
                            }
                            s.prune_kept(&n, &still, now)?;
                            for k in &r.kept {
                                if s.note_kept(k)? {
                                    tracing::warn!(
                                        "{n}: {} is on the sink ({}) and netban leaves it there: {}",
                                        k.target,
                                        k.owner,
                                        k.reason
                                    );
                                }
                            }
                            Ok(())
                        })
                        .await?;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(
                        "{name}: cannot list what the sink holds, repair skipped: {}",
                        err.message
                    );
                    report.error = Some(err.message);
                }
            }
        }
        let mut plan = plan_sink(
            &desired,
            &records,
            scope.targets(),
            PlanOptions {
                now,
                force: self.opts.force,
                self_expiring,
            },
        );
        plan.steps.extend(extra);
        report.deferred = plan.deferred;
        let (calls, quiet): (Vec<Step>, Vec<Step>) =
            plan.steps.into_iter().partition(Step::calls_sink);
        self.settle_quiet(&quiet, report).await?;
        if calls.is_empty() {
            return Ok(());
        }
        if self.opts.dry_run {
            for step in &calls {
                let change = to_change(step, self.sink, now);
                report.actions.push(self.sink.describe(&change));
                count(step, report);
            }
            return Ok(());
        }
        self.apply_all(calls, &records, report).await
    }

    /// Steps that need no call: forget expired entries, leave others' entries (loudly).
    async fn settle_quiet(
        &self,
        quiet: &[Step],
        report: &mut SinkReport,
    ) -> Result<(), StoreError> {
        if quiet.is_empty() {
            return Ok(());
        }
        let now = super::now();
        let mut ops = Vec::new();
        let mut kept = Vec::new();
        for step in quiet {
            match step {
                Step::Forget { target } => {
                    if self.opts.dry_run {
                        report
                            .actions
                            .push(format!("forget {target} (expired on the sink by itself)"));
                    }
                    ops.push(RecordOp::Forget(*target));
                }
                Step::Leave {
                    target,
                    remote_id,
                    owner,
                    expires,
                } => {
                    let k = Kept {
                        sink: self.name().to_string(),
                        target: *target,
                        remote_id: remote_id.clone(),
                        owner: owner.clone(),
                        reason: "its last ban ended, but the entry on the sink was not made by netban, so it stays (remove it by hand if it should go)".to_string(),
                        expires: *expires,
                        noticed: now,
                    };
                    if self.opts.dry_run {
                        report
                            .actions
                            .push(format!("leave {target} ({owner}): {}", k.reason));
                    }
                    ops.push(RecordOp::Forget(*target));
                    kept.push(k);
                }
                _ => {}
            }
        }
        report.kept += kept.len();
        if self.opts.dry_run {
            return Ok(());
        }
        let name = self.name().to_string();
        self.engine
            .db(move |s| {
                s.apply_record_ops(&name, &ops, &|_, _| 0, now)?;
                for k in &kept {
                    s.note_kept(k)?;
                    tracing::warn!(
                        "{name}: {} stays on the sink after its last unban: {} ({})",
                        k.target,
                        k.owner,
                        k.reason
                    );
                }
                Ok(())
            })
            .await
    }

    async fn apply_all(
        &self,
        steps: Vec<Step>,
        records: &[SinkRecord],
        report: &mut SinkReport,
    ) -> Result<(), StoreError> {
        let name = self.name().to_string();
        let batching = self.sink.batching();
        let max = batching.max.max(1);
        let known: HashMap<_, _> = records.iter().map(|r| (r.target, r)).collect();
        let mut recovered = false;
        let total = steps.len();
        for (i, chunk) in steps.chunks(max).enumerate() {
            if Instant::now() >= self.opts.deadline {
                report.not_attempted = total - i * max;
                tracing::info!(
                    "{name}: deadline reached, {} changes left pending",
                    report.not_attempted
                );
                break;
            }
            let now = super::now();
            let changes: Vec<Change> = chunk.iter().map(|s| to_change(s, self.sink, now)).collect();
            // Write-ahead: an add that reaches the remote side is never forgotten.
            let adding: Vec<_> = chunk
                .iter()
                .filter_map(|s| match s {
                    Step::Add { desired, .. } if !known.contains_key(&desired.target) => {
                        Some((desired.target, desired.lease.clone()))
                    }
                    _ => None,
                })
                .collect();
            if !adding.is_empty() {
                let n = name.clone();
                self.engine
                    .db(move |s| {
                        let refs: Vec<_> = adding.iter().map(|(t, l)| (*t, l)).collect();
                        s.record_adding(&n, &refs, now)
                    })
                    .await?;
            }
            let started = Instant::now();
            let outcomes = self.apply_batch(&changes).await;
            self.engine
                .observer
                .batch(&name, changes.len(), started.elapsed().as_secs_f64());
            let unavailable = outcomes
                .iter()
                .all(|o| matches!(o, Err(e) if e.retry == Retry::Soon));
            let any_ok = outcomes.iter().any(Result::is_ok);
            self.record(chunk, &changes, outcomes, &known, report)
                .await?;
            // The sink answers again: work that failed earlier need not wait out its backoff.
            if any_ok && !recovered {
                recovered = true;
                let n = name.clone();
                let due = self
                    .engine
                    .db(move |s| s.make_due(&n, super::now()))
                    .await?;
                if due > 0 {
                    tracing::info!(
                        "{name}: the sink answers again; retrying {due} failed changes now"
                    );
                }
            }
            // The whole batch failed transiently (connection refused, timeouts, 5xx): the
            // sink is unavailable. Stop instead of hammering it; the rest waits.
            let left = total.saturating_sub((i + 1) * max);
            if unavailable && left > 0 {
                report.deferred += left;
                tracing::info!(
                    "{name}: the sink is unavailable; {left} more changes wait for the next try"
                );
                break;
            }
        }
        Ok(())
    }

    /// Applies one batch, cut off shortly after the deadline; an atomic sink's rejected
    /// batch is split until the rejected changes stand alone.
    async fn apply_batch(&self, changes: &[Change]) -> Vec<Outcome> {
        let cutoff =
            tokio::time::Instant::from_std(self.opts.deadline + Duration::from_millis(500));
        let outcomes =
            match tokio::time::timeout_at(cutoff, self.sink.apply(changes, self.opts.deadline))
                .await
            {
                Ok(o) if o.len() == changes.len() => o,
                Ok(o) => {
                    let msg = format!(
                        "sink driver returned {} outcomes for {} changes (a bug in the driver)",
                        o.len(),
                        changes.len()
                    );
                    return changes
                        .iter()
                        .map(|_| Err(SinkError::soon(msg.clone())))
                        .collect();
                }
                Err(_) => {
                    return changes
                        .iter()
                        .map(|_| {
                            Err(SinkError::soon(
                                "deadline reached while the request was in flight",
                            ))
                        })
                        .collect();
                }
            };
        let rejected = outcomes
            .iter()
            .all(|o| matches!(o, Err(e) if e.retry == Retry::Later));
        if self.sink.commit() != Commit::Atomic || changes.len() < 2 || !rejected {
            return outcomes;
        }
        if Instant::now() >= self.opts.deadline {
            return outcomes;
        }
        let (a, b) = changes.split_at(changes.len() / 2);
        tracing::info!(
            "{}: the sink rejected a batch of {}; splitting it to find the rejected changes",
            self.name(),
            changes.len()
        );
        let mut out = Box::pin(self.apply_batch(a)).await;
        out.extend(Box::pin(self.apply_batch(b)).await);
        out
    }
}

/// Counts a planned step as the real run would (dry runs).
fn count(step: &Step, report: &mut SinkReport) {
    match step {
        Step::Add {
            remote_id: None, ..
        } => report.added += 1,
        Step::Add { .. } => report.extended += 1,
        Step::Remove {
            duplicate: true, ..
        } => report.repaired += 1,
        Step::Remove { .. } => report.removed += 1,
        Step::Leave { .. } | Step::Forget { .. } => {}
    }
}

/// The sink's view of a step.
pub(super) fn to_change(step: &Step, sink: &dyn Sink, now: i64) -> Change {
    match step {
        Step::Add {
            desired, remote_id, ..
        } => Change::Add {
            target: desired.target,
            expires: sink.expiry_for(desired.until, now),
            lease: desired.lease.clone(),
            remote_id: remote_id.clone(),
        },
        Step::Remove {
            target,
            remote_id,
            lease,
            adopted,
            ..
        } => Change::Remove {
            target: *target,
            remote_id: remote_id.clone(),
            lease: lease.clone(),
            adopted: *adopted,
        },
        // Never sent (not `calls_sink`); a removal by lookup is the harmless fallback.
        Step::Leave { target, .. } | Step::Forget { target } => Change::Remove {
            target: *target,
            remote_id: None,
            lease: crate::sink::LeaseInfo::unknown(),
            adopted: false,
        },
    }
}
