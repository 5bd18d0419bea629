//! Delivery: one runner per sink, and a supervisor that starts, stops and wakes them.
//!
//! A runner owns its sink's timing: it runs a pass when woken (leases changed), when
//! something becomes due (a retry time, a lease's end) and at least every 30 s (renewals);
//! every `resync_interval` the pass also lists what the sink holds and repairs drift. A sink
//! with a batch window waits that long after a wake, so changes arriving together go out in
//! one batch (one NETCONF commit). Runners are independent: a slow sink delays only itself,
//! and a reload stops only the runners of sinks whose config changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use netban_cluster::LockGate;
use netban_core::clock;
use netban_core::reconcile::{PassOptions, Scope, SinkSlot};
use tokio::sync::{Notify, broadcast, watch};

use crate::daemon::bus::{DaemonEvent, SyncRequest};
use crate::daemon::component::{Component, Shutdown};
use crate::daemon::handle::DaemonHandle;
use crate::protocol::Response;

/// The longest a pass may run; what is left continues in the next one at once.
const PASS_BUDGET: Duration = Duration::from_secs(60);
/// The longest a runner sleeps.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Passes run back to back at most this many times before the runner sleeps again.
const MAX_IMMEDIATE: u32 = 20;
/// A full check that failed is tried again after this (or `resync_interval`, if shorter).
const RETRY_REPAIR: Duration = Duration::from_secs(30);
/// Wakes arriving within this window are served by one pass.
const DEBOUNCE: Duration = Duration::from_millis(5);

pub struct Reconcile;

struct Runner {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

#[async_trait]
impl Component for Reconcile {
    fn name(&self) -> &'static str {
        "reconcile"
    }

    async fn run(self: Box<Self>, h: DaemonHandle, mut stop: Shutdown) -> Result<(), String> {
        let mut events = h.bus.subscribe();
        let mut runners: HashMap<String, Runner> = HashMap::new();
        for slot in h.engine.slots() {
            runners.insert(slot.name().to_string(), start(&h, slot));
        }
        loop {
            let event = tokio::select! {
                _ = stop.wait() => break,
                e = events.recv() => e,
            };
            match event {
                Ok(DaemonEvent::LeasesChanged) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    for r in runners.values() {
                        r.wake.notify_one();
                    }
                }
                Ok(DaemonEvent::SyncRequested(req)) => {
                    let h = h.clone();
                    tokio::spawn(async move { sync(h, req).await });
                }
                Ok(DaemonEvent::ConfigReloaded(change)) => {
                    for name in change.stopped.iter().chain(&change.started) {
                        if let Some(r) = runners.remove(name) {
                            finish(r).await;
                            h.forget_beat(&format!("sink {name}"));
                        }
                    }
                    for slot in h.engine.slots() {
                        if change.started.iter().any(|n| n == slot.name()) {
                            runners.insert(slot.name().to_string(), start(&h, slot));
                        }
                    }
                    for r in runners.values() {
                        r.wake.notify_one();
                    }
                }
                Ok(DaemonEvent::EventsAppended) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        for (_, r) in runners.drain() {
            finish(r).await;
        }
        tracing::info!("reconcile: every sink's runner stopped");
        Ok(())
    }
}

fn start(h: &DaemonHandle, slot: Arc<SinkSlot>) -> Runner {
    let wake = Arc::new(Notify::new());
    let (stop, stop_rx) = watch::channel(false);
    let gate = slot
        .def
        .common
        .exclusive
        .then(|| exclusive(h, &slot, stop_rx.clone()))
        .flatten();
    let task = tokio::spawn(runner(h.clone(), slot, wake.clone(), stop_rx, gate));
    Runner { wake, stop, task }
}

/// An exclusive sink's lock: taken, renewed and released by its own task; the sink's gate
/// opens only while this daemon holds it. `None` (the gate stays shut): no cluster bus.
fn exclusive(
    h: &DaemonHandle,
    slot: &SinkSlot,
    mut stop: watch::Receiver<bool>,
) -> Option<LockGate> {
    let name = slot.name();
    let Some(cluster) = &h.cluster else {
        tracing::error!(
            "{name}: exclusive, but the daemon runs without [cluster]; nothing will write it"
        );
        return None;
    };
    match cluster.hub_lock(name) {
        Ok((lock, gate)) => {
            tokio::spawn(lock.run(async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
            let g = gate.clone();
            slot.set_gate(Arc::new(move || g.may_write()));
            Some(gate)
        }
        Err(e) => {
            tracing::error!("{name}: {e}; nothing will write it");
            None
        }
    }
}

/// Stops a runner after the pass in flight (outcomes are recorded batch by batch).
async fn finish(r: Runner) {
    let _ = r.stop.send(true);
    let _ = tokio::time::timeout(PASS_BUDGET + Duration::from_secs(5), r.task).await;
}

async fn runner(
    h: DaemonHandle,
    slot: Arc<SinkSlot>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    mut gate: Option<LockGate>,
) {
    let name = slot.name().to_string();
    let beat = format!("sink {name}");
    let window = slot.def.common.window();
    // When the next full check (listing, repair) is due; a failed one is tried again within
    // a minute, not at every pass.
    let mut next_repair = Instant::now();
    let mut immediate = 0;
    let mut term = None;
    loop {
        h.beat(&beat);
        if let Some(g) = gate.as_mut() {
            // An exclusive sink: only the lock's holder writes; a new holding starts with a
            // full check (the previous holder may have died mid-batch).
            if !g.may_write() {
                if term.take().is_some() {
                    tracing::warn!(
                        "{name}: lost the fleet's lock; another netban writes this sink now"
                    );
                }
                tokio::select! {
                    _ = g.changed() => {}
                    _ = tokio::time::sleep(MAX_SLEEP) => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            if g.term() != term {
                term = g.term();
                // The other hubs' entries are this holder's now.
                let mut hubs = h.engine.removable_hosts();
                hubs.extend(g.other_hubs());
                h.engine.set_removable_hosts(hubs);
                tracing::info!(
                    "{name}: holds the fleet's lock (term {}); starting with a full check",
                    term.unwrap_or_default()
                );
                next_repair = Instant::now();
            }
        }
        let repair = Instant::now() >= next_repair;
        // An exclusive sink's pass ends its writes while the lock is surely still held.
        let budget = Instant::now() + PASS_BUDGET;
        let deadline = gate
            .as_ref()
            .and_then(LockGate::valid_until)
            .map_or(budget, |t| t.min(budget));
        let opts = PassOptions {
            deadline,
            force: false,
            repair,
            dry_run: false,
        };
        let report = match h.engine.run_sink(&slot, &Scope::All, opts).await {
            Ok(r) => {
                if repair {
                    let ok = r.error.is_none() && !r.busy;
                    next_repair = Instant::now()
                        + if ok {
                            h.resync
                        } else {
                            h.resync.min(RETRY_REPAIR)
                        };
                }
                h.metrics.after_sink_pass(&r, &h.store, clock::now());
                Some(r)
            }
            Err(e) => {
                tracing::error!("{name}: reconcile pass failed: {e}");
                None
            }
        };
        // Again at once while passes make progress (work freed by a recovering sink, what
        // the budget left): bounded, so a sink asking for the same change cannot spin.
        let progress = report
            .as_ref()
            .is_some_and(|r| r.changes() > 0 || r.not_attempted > 0);
        immediate = if progress { immediate + 1 } else { 0 };
        if *stop.borrow() {
            break;
        }
        let wait = if progress && immediate <= MAX_IMMEDIATE {
            Duration::ZERO
        } else {
            next_wait(&h, next_repair).await
        };
        tokio::select! {
            _ = wake.notified() => {
                // Let the batch fill: the sink's window, or a few milliseconds.
                let pause = window.unwrap_or_else(|| {
                    slot.sink(h.engine.env()).map(|s| s.batching().window).unwrap_or_default()
                });
                tokio::time::sleep(pause.max(DEBOUNCE)).await;
            }
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    tracing::debug!("{name}: runner stopped");
}

async fn next_wait(h: &DaemonHandle, next_repair: Instant) -> Duration {
    let now = clock::now();
    let mut wait = MAX_SLEEP.min(next_repair.saturating_duration_since(Instant::now()));
    if let Ok(Some(t)) = h.db(move |s| s.next_due(now)).await {
        wait = wait.min(Duration::from_secs((t - now).max(0) as u64));
    }
    wait.max(Duration::from_millis(50))
}

/// `sync` over the control socket: every sink, forced, with repair; answered when done.
async fn sync(h: DaemonHandle, req: Arc<SyncRequest>) {
    let opts = PassOptions {
        deadline: Instant::now() + PASS_BUDGET,
        force: true,
        repair: true,
        dry_run: false,
    };
    let report = match h.engine.run(&Scope::All, opts).await {
        Ok(r) => r,
        Err(e) => {
            req.answer(Response::error(1, e.to_string()));
            return;
        }
    };
    for s in &report.sinks {
        h.metrics.after_sink_pass(s, &h.store, clock::now());
    }
    let engine = h.engine.clone();
    let pending = h
        .db(move |_| {
            Ok(engine
                .plans(clock::now())?
                .iter()
                .filter(|p| engine.slot(&p.name).is_none_or(|s| s.may_write()))
                .map(|p| p.plan.steps.iter().filter(|s| s.calls_sink()).count() + p.plan.deferred)
                .sum::<usize>())
        })
        .await;
    let answer = match pending {
        Ok(pending) => Response {
            converged: Some(pending == 0 && report.converged()),
            pending: Some(pending),
            sinks: serde_json::to_value(&report.sinks).ok(),
            ..Response::ok()
        },
        Err(e) => Response::error(1, e.to_string()),
    };
    req.answer(answer);
}
