//! The reconcile loop: the daemon's one owner of delivery.
//!
//! It runs a pass when poked (a lease changed), when something becomes due (a retry time, a
//! lease's end) and at least every 30 s (renewals); every `resync_interval` the pass also
//! lists what each sink holds and repairs drift. Passes take the reconcile lock, so a
//! `netban sync` run by hand never races the daemon. On shutdown the loop finishes the pass
//! in flight (outcomes are recorded batch by batch, each in its own transaction) and stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use netban_core::clock;
use netban_core::lock::ReconcileLock;
use netban_core::reconcile::{PassOptions, PassReport, Scope};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{Shared, SyncRequest};

/// The longest a pass may run; what is left continues in the next one at once.
const PASS_BUDGET: Duration = Duration::from_secs(60);
/// The longest the loop sleeps.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Passes run back to back at most this many times before the loop sleeps again.
const MAX_IMMEDIATE: u32 = 20;
/// Pokes arriving within this window are served by one pass.
const DEBOUNCE: Duration = Duration::from_millis(5);

pub async fn run(
    shared: Arc<Shared>,
    mut sync_rx: mpsc::Receiver<SyncRequest>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_repair: Option<Instant> = None;
    let mut waiting_syncs: Vec<SyncRequest> = Vec::new();
    let mut immediate = 0;
    loop {
        shared.beat();
        while let Ok(req) = sync_rx.try_recv() {
            waiting_syncs.push(req);
        }
        let force = !waiting_syncs.is_empty();
        let repair = force || last_repair.is_none_or(|t| t.elapsed() >= shared.resync_interval);
        let result = pass(&shared, force, repair).await;
        if repair && result.is_some() {
            last_repair = Some(Instant::now());
        }
        // Run again at once while passes make progress (work freed by a recovering sink,
        // what the pass budget left): bounded, so a sink that keeps asking for the same
        // change cannot spin the loop.
        let progress = result
            .as_ref()
            .is_some_and(|r| r.changes() > 0 || r.sinks.iter().any(|s| s.not_attempted > 0));
        immediate = if progress { immediate + 1 } else { 0 };
        let busy = progress && immediate <= MAX_IMMEDIATE;
        for req in waiting_syncs.drain(..) {
            let _ = req.reply.send(sync_answer(&shared, result.as_ref()));
        }
        if *shutdown.borrow() {
            break;
        }
        let wait = if busy {
            Duration::ZERO
        } else {
            next_wait(&shared, last_repair)
        };
        tokio::select! {
            _ = shared.wake.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = tokio::time::sleep(wait) => {}
            Some(req) = sync_rx.recv() => waiting_syncs.push(req),
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("reconcile loop stopped");
}

/// One pass under the reconcile lock; `None` when it could not run (lock held, store error).
async fn pass(shared: &Arc<Shared>, force: bool, repair: bool) -> Option<PassReport> {
    let state_dir = shared.state_dir.clone();
    let lock = tokio::task::spawn_blocking(move || {
        ReconcileLock::acquire(&state_dir, Instant::now() + Duration::from_secs(5))
    })
    .await;
    let _lock = match lock {
        Ok(Ok(Some(l))) => l,
        Ok(Ok(None)) => {
            tracing::debug!(
                "reconcile lock held by another process (netban sync?); retrying shortly"
            );
            return None;
        }
        Ok(Err(e)) => {
            tracing::error!(
                "cannot take the reconcile lock in {}: {e}",
                shared.state_dir.display()
            );
            return None;
        }
        Err(e) => {
            tracing::error!("reconcile lock task failed: {e}");
            return None;
        }
    };
    let engine = shared.engine();
    if let Err(e) = engine.refresh_guard() {
        tracing::error!("guard: {e}; keeping the previous allowlist");
    }
    let now = clock::now();
    match shared.store.purge_expired(now) {
        Ok(gone) => {
            for l in gone {
                tracing::info!(
                    "lease {} (jail {}, origin {}) expired",
                    l.target,
                    l.jail,
                    l.origin
                );
            }
        }
        Err(e) => tracing::error!("cannot purge expired leases: {e}"),
    }
    let opts = PassOptions {
        deadline: Instant::now() + PASS_BUDGET,
        force,
        repair,
        dry_run: false,
    };
    match engine.run(&Scope::All, opts).await {
        Ok(report) => {
            shared
                .metrics
                .after_pass(&report, &shared.store, clock::now());
            *shared.last_report.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
            Some(report)
        }
        Err(e) => {
            tracing::error!("reconcile pass failed: {e}");
            None
        }
    }
}

fn next_wait(shared: &Shared, last_repair: Option<Instant>) -> Duration {
    let now = clock::now();
    let mut wait = MAX_SLEEP;
    if let Ok(Some(t)) = shared.store.next_event(now) {
        wait = wait.min(Duration::from_secs((t - now).max(0) as u64));
    }
    if let Some(t) = last_repair {
        wait = wait.min(shared.resync_interval.saturating_sub(t.elapsed()));
    }
    wait.max(Duration::from_millis(50))
}

fn sync_answer(shared: &Shared, report: Option<&PassReport>) -> serde_json::Value {
    let Some(report) = report else {
        return json!({"ok": false, "code": 1, "error": "the pass could not run (see the daemon's log)"});
    };
    let pending: usize = match shared.engine().plans(clock::now()) {
        Ok(plans) => plans.iter().map(|p| p.plan.steps.len()).sum(),
        Err(e) => return json!({"ok": false, "code": 1, "error": e.to_string()}),
    };
    let converged = pending == 0 && report.sinks.iter().all(|s| s.error.is_none());
    json!({"ok": true, "converged": converged, "pending": pending, "sinks": report.sinks})
}
