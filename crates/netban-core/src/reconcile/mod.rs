//! The reconcile engine: makes every sink hold the desired set.
//!
//! Level-triggered and idempotent: a pass over a sink reads the leases and the sink's records
//! from the store, plans the difference ([`plan`]), checks what the sink really holds when
//! asked to ([`repair`]), and carries the plan out in batches ([`apply`]), recording each
//! outcome as the remote side confirmed it. Running a pass twice changes nothing. The engine
//! owns retry timing (backoff with jitter, persisted in the records so it survives restarts),
//! batching, splitting rejected atomic batches, deadlines, and what to do with entries it
//! finds ([`repair::Ownership`]).
//!
//! Each sink is reconciled on its own ([`Engine::run_sink`], under its own lock), so a slow
//! sink never holds up another; [`Engine::run`] runs every sink at once for `sync` and the
//! CLI. Store calls block (disk, other processes' locks) and run on blocking threads, so the
//! daemon's runtime stays responsive while another process holds the database.

mod apply;
mod pass;
pub mod plan;
mod record;
pub mod repair;
pub mod report;
mod slot;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::clock;
use crate::config::{ReconcileConfig, SinkDef, SinkEnv};
use crate::guard::Guard;
use crate::lease::Lease;
use crate::lock::SinkLock;
use crate::sink::Retry;
use crate::store::{SinkRecord, Store, StoreError};
use crate::target::Target;
pub use pass::{LeaseEdit, PassOptions, Scope};
use plan::{Desired, Plan, PlanOptions, desired_set, plan_sink};
pub use repair::Ownership;
pub use report::{PassReport, SinkReport};
pub use slot::{SinkSlot, WriteGate};

/// Told about every batch and outcome, for metrics. All methods have empty defaults.
pub trait Observer: Send + Sync {
    /// A batch of `changes` changes took `seconds` on `sink`.
    fn batch(&self, _sink: &str, _changes: usize, _seconds: f64) {}
    /// One change (`add`, `extend`, `remove`) succeeded or failed.
    fn outcome(&self, _sink: &str, _verb: &str, _ok: bool) {}
}

struct NoObserver;
impl Observer for NoObserver {}

/// One sink's desired set, records and plan, as [`Engine::plans`] computed them.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub name: String,
    pub desired: BTreeMap<Target, Desired>,
    pub records: Vec<SinkRecord>,
    pub plan: Plan,
}

/// What [`Engine::reconfigure`] changed, by sink name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconfigured {
    pub kept: Vec<String>,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
}

/// The engine. Holds the sinks between passes.
pub struct Engine {
    store: Arc<Store>,
    guard: RwLock<Guard>,
    slots: RwLock<Vec<Arc<SinkSlot>>>,
    env: SinkEnv,
    retry: RwLock<ReconcileConfig>,
    ownership: RwLock<Ownership>,
    observer: Arc<dyn Observer>,
}

impl Engine {
    pub fn new(
        store: Arc<Store>,
        guard: Guard,
        sinks: Vec<SinkDef>,
        env: SinkEnv,
        retry: ReconcileConfig,
    ) -> Engine {
        let ownership = Ownership {
            host_id: env.host_id.clone(),
            ..Ownership::default()
        };
        Engine {
            store,
            guard: RwLock::new(guard),
            slots: RwLock::new(
                sinks
                    .into_iter()
                    .map(|d| Arc::new(SinkSlot::new(d)))
                    .collect(),
            ),
            env,
            retry: RwLock::new(retry),
            ownership: RwLock::new(ownership),
            observer: Arc::new(NoObserver),
        }
    }

    /// Reports batches and outcomes to `observer` (the daemon's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Engine {
        self.observer = observer;
        self
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn env(&self) -> &SinkEnv {
        &self.env
    }

    /// Hosts whose entries this engine treats as its own.
    pub fn removable_hosts(&self) -> std::collections::BTreeSet<String> {
        self.ownership
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .removable
            .iter()
            .cloned()
            .collect()
    }

    /// Hosts whose entries this engine treats as its own (the other hub of exclusive sinks).
    pub fn set_removable_hosts(&self, hosts: impl IntoIterator<Item = String>) {
        let mut o = self.ownership.write().unwrap_or_else(|p| p.into_inner());
        o.removable = hosts.into_iter().collect();
    }

    /// Re-reads allowlist files that changed (hot reload); true when one was re-read.
    pub fn refresh_guard(&self) -> bool {
        self.guard
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .refresh()
    }

    /// A copy of the guard as it is now.
    pub fn guard(&self) -> Guard {
        self.guard.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The configured sinks.
    pub fn slots(&self) -> Vec<Arc<SinkSlot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn slot(&self, name: &str) -> Option<Arc<SinkSlot>> {
        self.slots().into_iter().find(|s| s.name() == name)
    }

    /// The names of the configured sinks.
    pub fn sink_names(&self) -> Vec<String> {
        self.slots().iter().map(|s| s.name().to_string()).collect()
    }

    /// Takes a new config: a sink whose definition did not change keeps its built driver
    /// (NETCONF sessions and tokens survive a reload), the others are built anew.
    pub fn reconfigure(
        &self,
        guard: Guard,
        sinks: Vec<SinkDef>,
        retry: ReconcileConfig,
    ) -> Reconfigured {
        let mut out = Reconfigured::default();
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::take(&mut *slots);
        for def in sinks {
            match old
                .iter()
                .find(|s| s.name() == def.name() && s.def.fingerprint == def.fingerprint)
            {
                Some(s) => {
                    out.kept.push(def.name().to_string());
                    slots.push(s.clone());
                }
                None => {
                    out.started.push(def.name().to_string());
                    slots.push(Arc::new(SinkSlot::new(def)));
                }
            }
        }
        for s in &old {
            if !out.kept.iter().any(|k| k == s.name()) {
                out.stopped.push(s.name().to_string());
            }
        }
        drop(slots);
        *self.guard.write().unwrap_or_else(|p| p.into_inner()) = guard;
        *self.retry.write().unwrap_or_else(|p| p.into_inner()) = retry;
        out
    }

    /// The plan of every sink, without doing anything (for `list`, `status`, `explain`).
    pub fn plans(&self, now: i64) -> Result<Vec<SinkPlan>, StoreError> {
        let leases = self.store.live_leases(now, None)?;
        let guard = self.guard();
        let mut out = Vec::new();
        for slot in self.slots() {
            let name = slot.name().to_string();
            let desired = desired_set(&slot.def.common, &leases, &guard, now);
            let records = self.store.records(&name)?;
            let self_expiring = slot.sink(&self.env).is_ok_and(|s| s.self_expiring());
            let plan = plan_sink(
                &desired,
                &records,
                None,
                PlanOptions {
                    now,
                    force: true,
                    self_expiring,
                },
            );
            out.push(SinkPlan {
                name,
                desired,
                records,
                plan,
            });
        }
        Ok(out)
    }

    /// Runs one pass over `scope` on every sink at once, each under its own lock.
    pub async fn run(&self, scope: &Scope, opts: PassOptions) -> Result<PassReport, StoreError> {
        let slots = self.slots();
        let work = slots.iter().map(|s| self.run_sink(s, scope, opts));
        let mut report = PassReport::default();
        for r in futures::future::join_all(work).await {
            report.sinks.push(r?);
        }
        Ok(report)
    }

    /// What a pass over `scope` would send on every sink if `edit` were made first: a dry
    /// run of `ban` or `unban`, request by request.
    pub async fn preview(
        &self,
        scope: &Scope,
        edit: LeaseEdit,
        deadline: Instant,
    ) -> Result<PassReport, StoreError> {
        let opts = PassOptions {
            deadline,
            force: true,
            repair: false,
            dry_run: true,
        };
        let slots = self.slots();
        let work = slots
            .iter()
            .map(|s| self.run_sink_with(s, scope, opts, Some(&edit)));
        let mut report = PassReport::default();
        for r in futures::future::join_all(work).await {
            report.sinks.push(r?);
        }
        Ok(report)
    }

    /// Runs one pass over `scope` on one sink, under its lock (a dry run takes none).
    pub async fn run_sink(
        &self,
        slot: &SinkSlot,
        scope: &Scope,
        opts: PassOptions,
    ) -> Result<SinkReport, StoreError> {
        self.run_sink_with(slot, scope, opts, None).await
    }

    async fn run_sink_with(
        &self,
        slot: &SinkSlot,
        scope: &Scope,
        opts: PassOptions,
        edit: Option<&LeaseEdit>,
    ) -> Result<SinkReport, StoreError> {
        let name = slot.name();
        let mut report = SinkReport::new(name);
        if !opts.dry_run && !slot.may_write() {
            tracing::debug!(
                "{name}: exclusive, and another netban holds the fleet's lock for it; the work stays pending for the holder"
            );
            report.standby = true;
            return Ok(report);
        }
        let lock = if opts.dry_run {
            None
        } else {
            match SinkLock::acquire(self.store.dir(), name, opts.deadline)
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
            {
                Some(l) => Some(l),
                None => {
                    tracing::info!(
                        "{name}: another netban process is delivering to this sink; the work stays pending for it"
                    );
                    report.busy = true;
                    return Ok(report);
                }
            }
        };
        let _lock = lock;
        let sink = match slot.sink(&self.env) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{name}: cannot set up the sink: {e}");
                report.error = Some(e);
                report.not_attempted = 1;
                return Ok(report);
            }
        };
        apply::Pass {
            engine: self,
            slot,
            sink: sink.as_ref(),
            opts,
            edit,
        }
        .run(scope, &mut report)
        .await?;
        Ok(report)
    }

    /// Runs `f` on the store on a blocking thread.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Task(format!("store task failed: {e}"))))
    }

    /// The live leases of `scope`.
    async fn leases(&self, scope: &Scope, now: i64) -> Result<Vec<Lease>, StoreError> {
        match scope.targets() {
            None => self.db(move |s| s.live_leases(now, None)).await,
            Some(ts) => {
                let ts = ts.to_vec();
                self.db(move |s| s.live_leases_of(now, &ts)).await
            }
        }
    }

    /// Seconds to wait before attempt `attempts + 1`.
    fn delay_fn(&self) -> impl Fn(Retry, i64) -> i64 + Send + Sync + 'static {
        let r = self.retry.read().unwrap_or_else(|p| p.into_inner()).clone();
        move |retry, attempts| backoff(&r, retry, attempts)
    }
}

/// Seconds to wait before attempt `attempts + 1`: doubling from `retry_initial` up to
/// `retry_max` for transient failures, `retry_refused` for refusals; ±25 % jitter so a fleet
/// does not retry in lockstep.
pub fn backoff(r: &ReconcileConfig, retry: Retry, attempts: i64) -> i64 {
    use std::time::Duration;
    let secs = match retry {
        Retry::Soon => crate::retry::Backoff::new(
            Duration::from_secs_f64(r.retry_initial),
            Duration::from_secs_f64(r.retry_max),
            0.25,
        )
        .delay(attempts.clamp(1, 64) as u32)
        .as_secs_f64(),
        Retry::Later => r.retry_refused * (0.75 + fastrand::f64() * 0.5),
    };
    secs.round().max(1.0) as i64
}

/// Now, for the passes (one place to read the clock).
fn now() -> i64 {
    clock::now()
}

#[cfg(test)]
mod tests;
