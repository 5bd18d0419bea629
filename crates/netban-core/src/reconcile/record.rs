//! Recording a batch's outcomes: what the sink confirmed becomes a record (held, adopted,
//! somebody else's), what failed gets its next try, what the sink left in place is noted
//! as kept; one transaction per batch, then the log lines.

use std::collections::HashMap;

use super::SinkReport;
use super::apply::Pass;
use super::plan::Step;
use crate::owner::Owner;
use crate::sink::{Change, Outcome};
use crate::store::{Kept, RecordOp, RecordState, SinkRecord, StoreError};
use crate::target::Target;

/// How long after an add was tried a removal that finds nothing waits before it believes it:
/// a request cut off (timeout, kill -9) may still land on the remote side.
const IN_FLIGHT_GRACE: i64 = 60;

/// A log line written once a batch's records are committed (it may need the attempt counts).
type LogLine = Box<dyn FnOnce(&[i64]) + Send>;

impl Pass<'_> {
    /// Records the outcomes of a batch in one transaction, then logs them.
    pub(super) async fn record(
        &self,
        steps: &[Step],
        changes: &[Change],
        outcomes: Vec<Outcome>,
        known: &HashMap<Target, &SinkRecord>,
        report: &mut SinkReport,
    ) -> Result<(), StoreError> {
        let name = self.name().to_string();
        let now = super::now();
        let policy = self
            .engine
            .ownership
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut ops = Vec::new();
        let mut logs: Vec<LogLine> = Vec::new();
        let mut kept: Vec<Kept> = Vec::new();
        let mut failures = 0usize;
        for ((step, change), outcome) in steps.iter().zip(changes).zip(outcomes) {
            self.engine
                .observer
                .outcome(&name, change.verb(), outcome.is_ok());
            let target = *change.target();
            match (step, outcome) {
                (
                    Step::Remove {
                        duplicate: true, ..
                    },
                    Ok(_),
                ) => {
                    report.repaired += 1;
                    tracing::info!("{name}: removed a duplicate entry of {target}");
                }
                (
                    Step::Remove {
                        duplicate: true, ..
                    },
                    Err(e),
                ) => tracing::warn!(
                    "{name}: removing a duplicate of {target} failed (the next full check tries again): {}",
                    e.message
                ),
                (
                    Step::Add {
                        desired,
                        adopted,
                        foreign_owner,
                        remote_id,
                        ..
                    },
                    Ok(applied),
                ) => {
                    let mut rec = SinkRecord::held(&name, target, desired.lease.clone(), now);
                    rec.remote_id = applied.remote_id.clone();
                    rec.expires = applied.expires.or(match change {
                        Change::Add { expires, .. } => *expires,
                        Change::Remove { .. } => None,
                    });
                    rec.not_enforced = applied.not_enforced.clone();
                    rec.adopted = *adopted;
                    rec.foreign_owner = foreign_owner.clone();
                    match &applied.owner {
                        Owner::This => {}
                        Owner::Host(h) if *h == policy.host_id || policy.removable.contains(h) => {
                            rec.adopted = true;
                        }
                        // The very entry adopted by id (`netban migrate`): still ours to remove.
                        _ if *adopted && remote_id.is_some() && applied.remote_id == *remote_id => {
                        }
                        other => {
                            if rec.foreign_owner.is_none() {
                                tracing::warn!(
                                    "{name}: {target} landed on an existing entry {} ({}); netban will leave it in place when its ban ends",
                                    applied.remote_id.as_deref().unwrap_or(""),
                                    other.describe()
                                );
                            }
                            rec.foreign_owner = Some(other.describe());
                        }
                    }
                    let extended = remote_id.is_some();
                    if extended {
                        report.extended += 1;
                    } else {
                        report.added += 1;
                    }
                    let id = rec
                        .remote_id
                        .as_deref()
                        .map(|i| format!(" as {i}"))
                        .unwrap_or_default();
                    let exp = rec
                        .expires
                        .map(|e| format!(", expires {}", crate::clock::format_utc(e)))
                        .unwrap_or_default();
                    let line = format!(
                        "{name}: {target} {}{id}{exp} (jail {}, origin {})",
                        if extended { "extended" } else { "added" },
                        desired.lease.jail,
                        desired.lease.origin
                    );
                    let not_enforced = rec.not_enforced.clone();
                    logs.push(Box::new(move |_| {
                        tracing::info!("{line}");
                        if let Some(why) = not_enforced {
                            tracing::warn!(
                                "{}: {target} is on the sink but NOT enforced: {why}",
                                line.split(':').next().unwrap_or("")
                            );
                        }
                    }));
                    ops.push(RecordOp::Held(rec));
                }
                (Step::Remove { .. }, Ok(applied)) => {
                    let rec = known.get(&target).copied();
                    let in_flight = rec.is_some_and(|r| {
                        r.state == RecordState::Adding && now - r.updated < IN_FLIGHT_GRACE
                    });
                    if applied.absent && in_flight && !self.opts.force {
                        // An add of this target may still be landing: look again later.
                        let until = rec.map_or(now, |r| r.updated) + IN_FLIGHT_GRACE;
                        ops.push(RecordOp::Defer { target, until });
                        report.deferred += 1;
                        continue;
                    }
                    if applied.owner != Owner::This
                        && !matches!(&applied.owner, Owner::Host(h) if policy.removable.contains(h))
                        && !applied.absent
                    {
                        // The driver found the entry is not netban's and left it.
                        report.kept += 1;
                        let k = Kept {
                            sink: name.clone(),
                            target,
                            remote_id: applied.remote_id.clone(),
                            owner: applied.owner.describe(),
                            reason: "its last ban ended, but the entry on the sink was not made by netban, so it stays (remove it by hand if it should go)".to_string(),
                            expires: applied.expires,
                            noticed: now,
                        };
                        ops.push(RecordOp::Forget(target));
                        let n = name.clone();
                        let line = format!(
                            "{n}: {} stays on the sink after its last unban: {} ({})",
                            k.target, k.owner, k.reason
                        );
                        logs.push(Box::new(move |_| tracing::warn!("{line}")));
                        kept.push(k);
                        continue;
                    }
                    report.removed += 1;
                    ops.push(RecordOp::Forget(target));
                    let n = name.clone();
                    logs.push(Box::new(move |_| tracing::info!("{n}: {target} removed")));
                }
                (_, Err(e)) => {
                    let lease = change.lease().clone();
                    let verb = change.verb();
                    let idx = failures;
                    failures += 1;
                    report.failed += 1;
                    report.error = Some(e.message.clone());
                    let n = name.clone();
                    let delay = self.engine.delay_fn();
                    let message = e.message.clone();
                    let retry = e.retry;
                    logs.push(Box::new(move |attempts: &[i64]| {
                        let a = attempts.get(idx).copied().unwrap_or(1);
                        tracing::warn!(
                            "{n}: {verb} {target} failed (attempt {a}, next try in about {}s): {message}",
                            delay(retry, a)
                        );
                    }));
                    ops.push(RecordOp::Failed {
                        target,
                        lease,
                        error: e.message,
                        retry: e.retry,
                    });
                }
                (Step::Leave { .. } | Step::Forget { .. }, Ok(_)) => {}
            }
        }
        let delay = self.engine.delay_fn();
        let attempts = self
            .engine
            .db(move |s| {
                let attempts = s.apply_record_ops(&name, &ops, &delay, now)?;
                for k in &kept {
                    s.note_kept(k)?;
                }
                Ok(attempts)
            })
            .await?;
        for log in logs {
            log(&attempts);
        }
        Ok(())
    }
}
