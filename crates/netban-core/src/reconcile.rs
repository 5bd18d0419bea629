//! The reconcile engine: makes every sink hold the desired set.
//!
//! Level-triggered and idempotent: each pass reads the leases and sink records from the store,
//! plans the difference per sink ([`crate::plan`]), and carries it out in batches, recording
//! each outcome as the remote side confirmed it. Running a pass twice changes nothing. The
//! engine owns retry timing (exponential backoff with jitter, persisted in the records so it
//! survives restarts), deadlines, and repair against what a sink lists. Sinks run in parallel;
//! a slow sink never holds up another.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::clock;
use crate::config::{ReconcileConfig, SinkConfig};
use crate::guard::Guard;
use crate::lease::Lease;
use crate::plan::{Desired, Plan, Step, desired_set, plan_sink};
use crate::sink::{Change, Outcome, Retry, Sink, SinkError};
use crate::store::{RecordState, SinkRecord, Store, StoreError};
use crate::target::Target;

/// Builds a sink driver from its config. The binary provides it (drivers live in their own
/// crates); it is called only when a sink has work, and the sink is kept for later passes.
pub trait SinkFactory: Send + Sync {
    fn build(&self, config: &SinkConfig) -> Result<Arc<dyn Sink>, String>;
}

/// Told about every batch and outcome, for metrics. All methods have empty defaults.
pub trait Observer: Send + Sync {
    /// A batch of `changes` changes took `seconds` on `sink`.
    fn batch(&self, _sink: &str, _changes: usize, _seconds: f64) {}
    /// One change (`add`, `extend`, `remove`) succeeded or failed.
    fn outcome(&self, _sink: &str, _verb: &str, _ok: bool) {}
}

struct NoObserver;
impl Observer for NoObserver {}

/// Which targets a pass looks at.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Targets(Vec<Target>),
}

/// How a pass runs.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    /// No new batch starts after this; a running one is cut off shortly after.
    pub deadline: Instant,
    /// Ignore retry times (`netban sync`).
    pub force: bool,
    /// List what each sink holds and repair drift (Scope::All only).
    pub repair: bool,
    /// Plan and log, change nothing.
    pub dry_run: bool,
}

/// What a pass did on one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkReport {
    pub sink: String,
    pub added: usize,
    pub extended: usize,
    pub removed: usize,
    pub failed: usize,
    /// Steps waiting for their retry time.
    pub deferred: usize,
    /// Steps the deadline left for later.
    pub not_attempted: usize,
    /// Entries repaired from the remote side's list (vanished, orphaned, adopted).
    pub repaired: usize,
    /// The last error, if any.
    pub error: Option<String>,
}

impl SinkReport {
    /// True when nothing is left to do on this sink.
    pub fn converged(&self) -> bool {
        self.failed == 0 && self.deferred == 0 && self.not_attempted == 0 && self.error.is_none()
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PassReport {
    pub sinks: Vec<SinkReport>,
}

impl PassReport {
    pub fn converged(&self) -> bool {
        self.sinks.iter().all(SinkReport::converged)
    }
    pub fn changes(&self) -> usize {
        self.sinks
            .iter()
            .map(|s| s.added + s.extended + s.removed)
            .sum()
    }
}

/// One sink's desired set, records and plan, as [`Engine::plans`] computed them.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub name: String,
    pub desired: BTreeMap<Target, Desired>,
    pub records: Vec<SinkRecord>,
    pub plan: Plan,
}

struct Slot {
    config: SinkConfig,
    built: Mutex<Option<Arc<dyn Sink>>>,
}

/// The engine. Holds built sinks between passes (connection pools, tokens).
pub struct Engine {
    store: Arc<Store>,
    guard: RwLock<Guard>,
    slots: Vec<Slot>,
    factory: Box<dyn SinkFactory>,
    retry: ReconcileConfig,
    observer: Arc<dyn Observer>,
}

impl Engine {
    pub fn new(
        store: Arc<Store>,
        guard: Guard,
        sinks: &[SinkConfig],
        factory: Box<dyn SinkFactory>,
        retry: ReconcileConfig,
    ) -> Engine {
        let slots = sinks
            .iter()
            .map(|c| Slot {
                config: c.clone(),
                built: Mutex::new(None),
            })
            .collect();
        Engine {
            store,
            guard: RwLock::new(guard),
            slots,
            factory,
            retry,
            observer: Arc::new(NoObserver),
        }
    }

    /// Reports batches and outcomes to `observer` (the daemon's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Engine {
        self.observer = observer;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Re-reads allowlist files that changed (hot reload); on error the old lists stay.
    pub fn refresh_guard(&self) -> Result<bool, crate::guard::GuardError> {
        self.guard
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .refresh()
    }

    fn desired(&self, slot: &Slot, leases: &[Lease], now: i64) -> BTreeMap<Target, Desired> {
        let guard = self.guard.read().unwrap_or_else(|p| p.into_inner());
        desired_set(&slot.config, leases, &guard, now)
    }

    /// A copy of the guard as it is now (the daemon checks bans from its socket with it).
    pub fn guard_snapshot(&self) -> Guard {
        self.guard.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The names of the configured sinks.
    pub fn sink_names(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| s.config.name().to_string())
            .collect()
    }

    /// The plan of every sink, without doing anything (for `list`, `status`, `sync --dry-run`).
    pub fn plans(&self, now: i64) -> Result<Vec<SinkPlan>, StoreError> {
        let leases = self.store.live_leases(now, None)?;
        let mut out = Vec::new();
        for slot in &self.slots {
            let name = slot.config.name().to_string();
            let desired = self.desired(slot, &leases, now);
            let records = self.store.records(&name)?;
            let plan = plan_sink(&desired, &records, None, now, true);
            out.push(SinkPlan {
                name,
                desired,
                records,
                plan,
            });
        }
        Ok(out)
    }

    /// Runs one pass over `scope`.
    pub async fn run(&self, scope: &Scope, opts: PassOptions) -> Result<PassReport, StoreError> {
        let now = clock::now();
        let leases = match scope {
            Scope::All => self.store.live_leases(now, None)?,
            Scope::Targets(ts) => self.store.live_leases_of(now, ts)?,
        };
        let mut work = Vec::new();
        for slot in &self.slots {
            work.push(self.run_sink(slot, scope, &leases, opts));
        }
        let results = futures::future::join_all(work).await;
        let mut report = PassReport::default();
        for r in results {
            report.sinks.push(r?);
        }
        Ok(report)
    }

    fn sink(&self, slot: &Slot) -> Result<Arc<dyn Sink>, String> {
        let mut built = slot.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = built.as_ref() {
            return Ok(s.clone());
        }
        let s = self.factory.build(&slot.config)?;
        *built = Some(s.clone());
        Ok(s)
    }

    async fn run_sink(
        &self,
        slot: &Slot,
        scope: &Scope,
        leases: &[Lease],
        opts: PassOptions,
    ) -> Result<SinkReport, StoreError> {
        let name = slot.config.name();
        let mut report = SinkReport {
            sink: name.to_string(),
            ..SinkReport::default()
        };
        let now = clock::now();
        let desired = self.desired(slot, leases, now);
        let scope_targets = match scope {
            Scope::All => None,
            Scope::Targets(ts) => Some(ts.as_slice()),
        };
        let mut records = match scope_targets {
            None => self.store.records(name)?,
            Some(ts) => self.store.records_of(name, ts)?,
        };
        let mut extra = Vec::new();
        if opts.repair && scope_targets.is_none() && !opts.dry_run {
            match self.repair(slot, &desired, &records, opts.deadline).await {
                Ok((n, orphans)) => {
                    report.repaired = n;
                    extra = orphans;
                    if n > 0 {
                        records = self.store.records(name)?;
                    }
                }
                Err(e) => {
                    tracing::warn!("{name}: cannot list what the sink holds, repair skipped: {e}");
                    report.error = Some(e);
                }
            }
        }
        let mut plan = plan_sink(&desired, &records, scope_targets, now, opts.force);
        plan.steps.extend(extra);
        report.deferred = plan.deferred;
        if plan.steps.is_empty() {
            return Ok(report);
        }
        if opts.dry_run {
            for step in &plan.steps {
                match step {
                    Step::Add {
                        desired,
                        remote_id: None,
                    } => tracing::info!(
                        "{name}: would add {} until {}",
                        desired.target,
                        desired.until
                    ),
                    Step::Add { desired, .. } => tracing::info!(
                        "{name}: would extend {} until {}",
                        desired.target,
                        desired.until
                    ),
                    Step::Remove { target, .. } => tracing::info!("{name}: would remove {target}"),
                }
            }
            report.not_attempted = plan.steps.len();
            return Ok(report);
        }
        let sink = match self.sink(slot) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{name}: cannot set up the sink: {e}");
                report.not_attempted = plan.steps.len();
                report.error = Some(e);
                return Ok(report);
            }
        };
        let steps = plan.steps;
        let batch = sink.max_batch().max(1);
        let mut recovered = false;
        for (i, chunk) in steps.chunks(batch).enumerate() {
            if Instant::now() >= opts.deadline {
                report.not_attempted = steps.len() - i * batch;
                tracing::info!(
                    "{name}: deadline reached, {} changes left pending",
                    report.not_attempted
                );
                break;
            }
            let now = clock::now();
            let changes: Vec<Change> = chunk
                .iter()
                .map(|s| to_change(s, sink.as_ref(), now))
                .collect();
            let cutoff = tokio::time::Instant::from_std(opts.deadline + Duration::from_millis(500));
            let started = Instant::now();
            let outcomes =
                match tokio::time::timeout_at(cutoff, sink.apply(&changes, opts.deadline)).await {
                    Ok(o) if o.len() == changes.len() => o,
                    Ok(o) => {
                        let msg = format!(
                            "sink driver returned {} outcomes for {} changes (a bug in the driver)",
                            o.len(),
                            changes.len()
                        );
                        changes
                            .iter()
                            .map(|_| Err(SinkError::soon(msg.clone())))
                            .collect()
                    }
                    Err(_) => changes
                        .iter()
                        .map(|_| {
                            Err(SinkError::soon(
                                "deadline reached while the request was in flight",
                            ))
                        })
                        .collect(),
                };
            self.observer
                .batch(name, changes.len(), started.elapsed().as_secs_f64());
            let unavailable = outcomes
                .iter()
                .all(|o| matches!(o, Err(e) if e.retry == Retry::Soon));
            let any_ok = outcomes.iter().any(Result::is_ok);
            for ((step, change), outcome) in chunk.iter().zip(&changes).zip(outcomes) {
                self.observer.outcome(name, change.verb(), outcome.is_ok());
                if matches!(
                    step,
                    Step::Remove {
                        duplicate: true,
                        ..
                    }
                ) {
                    // The target's own entry stays; its record is not touched.
                    match outcome {
                        Ok(_) => report.repaired += 1,
                        Err(e) => tracing::warn!(
                            "{name}: removing a duplicate of {} failed (the next full check tries again): {}",
                            change.target(),
                            e.message
                        ),
                    }
                    continue;
                }
                self.record(name, change, outcome, &mut report)?;
            }
            // The sink answers again: work that failed earlier need not wait out its backoff.
            if any_ok && !recovered {
                recovered = true;
                let n = self.store.make_due(name, clock::now())?;
                if n > 0 {
                    tracing::info!(
                        "{name}: the sink answers again; retrying {n} failed changes now"
                    );
                }
            }
            // The whole batch failed transiently (connection refused, timeouts, 5xx): the
            // sink is unavailable. Stop here instead of hammering it; the rest waits for the
            // next try.
            let left = steps.len().saturating_sub((i + 1) * batch);
            if unavailable && left > 0 {
                report.deferred += left;
                tracing::info!(
                    "{name}: the sink is unavailable; {left} more changes wait for the next try"
                );
                break;
            }
        }
        Ok(report)
    }

    /// Compares the records with what the sink lists. Records of entries that vanished are
    /// forgotten (so they are added again while desired); entries carrying netban's mark that
    /// no record knows are adopted when desired and returned as removals otherwise; foreign
    /// entries are never touched.
    async fn repair(
        &self,
        slot: &Slot,
        desired: &BTreeMap<Target, Desired>,
        records: &[SinkRecord],
        deadline: Instant,
    ) -> Result<(usize, Vec<Step>), String> {
        let name = slot.config.name();
        let sink = self.sink(slot)?;
        let Some(held) = sink.held(deadline).await.map_err(|e| e.message)? else {
            return Ok((0, Vec::new()));
        };
        let now = clock::now();
        let mut repaired = 0;
        let mut removals = Vec::new();
        let known: HashMap<Target, &SinkRecord> = records.iter().map(|r| (r.target, r)).collect();
        // One entry stands for each target: the one the record names, else the first listed.
        // Further entries with netban's mark are duplicates (two adds raced on the remote
        // side, e.g. a killed process's request still running): remove them by id.
        let mut grouped: HashMap<Target, Vec<&crate::sink::HeldEntry>> = HashMap::new();
        for h in &held {
            grouped.entry(h.target).or_default().push(h);
        }
        let mut remote: HashMap<Target, &crate::sink::HeldEntry> = HashMap::new();
        for (target, entries) in grouped {
            let recorded = known.get(&target).and_then(|r| r.remote_id.as_ref());
            let keep = entries
                .iter()
                .position(|e| e.remote_id.is_some() && e.remote_id.as_ref() == recorded)
                .unwrap_or(0);
            for (i, extra) in entries.iter().enumerate() {
                if i == keep || !extra.marked {
                    continue;
                }
                tracing::warn!(
                    "{name}: {target} is on the sink twice ({} and {}); removing the duplicate",
                    entries[keep].remote_id.as_deref().unwrap_or("?"),
                    extra.remote_id.as_deref().unwrap_or("?")
                );
                removals.push(Step::Remove {
                    target,
                    remote_id: extra.remote_id.clone(),
                    lease: known
                        .get(&target)
                        .map_or_else(unknown_lease, |r| r.lease.clone()),
                    duplicate: true,
                });
            }
            remote.insert(target, entries[keep]);
        }
        for rec in records.iter().filter(|r| r.state == RecordState::Held) {
            match remote.get(&rec.target) {
                None => {
                    tracing::warn!(
                        "{name}: {} is no longer on the sink (removed behind netban's back); it will be added again while banned",
                        rec.target
                    );
                    self.store
                        .forget(name, &rec.target)
                        .map_err(|e| e.to_string())?;
                    repaired += 1;
                }
                Some(h)
                    if h.expires != rec.expires
                        || h.not_enforced != rec.not_enforced
                        || (h.remote_id.is_some() && h.remote_id != rec.remote_id) =>
                {
                    let mut r = rec.clone();
                    r.expires = h.expires;
                    r.not_enforced = h.not_enforced.clone();
                    if h.remote_id.is_some() {
                        r.remote_id = h.remote_id.clone();
                    }
                    r.updated = now;
                    self.store.record_held(&r).map_err(|e| e.to_string())?;
                    repaired += 1;
                }
                Some(_) => {}
            }
        }
        for h in remote.values().filter(|h| h.marked) {
            if known
                .get(&h.target)
                .is_some_and(|r| r.state == RecordState::Held)
            {
                continue;
            }
            match desired.get(&h.target) {
                Some(d) => {
                    let rec = SinkRecord {
                        sink: name.to_string(),
                        target: h.target,
                        state: RecordState::Held,
                        remote_id: h.remote_id.clone(),
                        expires: h.expires,
                        lease: d.lease.clone(),
                        not_enforced: h.not_enforced.clone(),
                        attempts: 0,
                        next_try: 0,
                        last_error: None,
                        updated: now,
                    };
                    tracing::info!("{name}: adopted {} already on the sink", h.target);
                    self.store.record_held(&rec).map_err(|e| e.to_string())?;
                    repaired += 1;
                }
                None if !known.contains_key(&h.target) => {
                    tracing::info!(
                        "{name}: {} is on the sink with netban's mark but not banned; removing it",
                        h.target
                    );
                    removals.push(Step::Remove {
                        target: h.target,
                        remote_id: h.remote_id.clone(),
                        lease: unknown_lease(),
                        duplicate: false,
                    });
                }
                // An `adding` record not desired: the plan already removes it by lookup.
                None => {}
            }
        }
        Ok((repaired, removals))
    }

    fn record(
        &self,
        name: &str,
        change: &Change,
        outcome: Outcome,
        report: &mut SinkReport,
    ) -> Result<(), StoreError> {
        let now = clock::now();
        let target = change.target();
        match (change, outcome) {
            (
                Change::Add {
                    expires,
                    lease,
                    remote_id,
                    ..
                },
                Ok(applied),
            ) => {
                let extended = remote_id.is_some();
                let rec = SinkRecord {
                    sink: name.to_string(),
                    target: *target,
                    state: RecordState::Held,
                    remote_id: applied.remote_id.clone(),
                    expires: applied.expires.or(*expires),
                    lease: lease.clone(),
                    not_enforced: applied.not_enforced.clone(),
                    attempts: 0,
                    next_try: 0,
                    last_error: None,
                    updated: now,
                };
                self.store.record_held(&rec)?;
                let id = applied
                    .remote_id
                    .as_deref()
                    .map(|i| format!(" as {i}"))
                    .unwrap_or_default();
                let exp = rec
                    .expires
                    .map(|e| format!(", expires {}", clock::format_utc(e)))
                    .unwrap_or_default();
                tracing::info!(
                    "{name}: {target} {}{id}{exp} (jail {}, origin {})",
                    if extended { "extended" } else { "added" },
                    lease.jail,
                    lease.origin
                );
                if let Some(why) = &applied.not_enforced {
                    tracing::warn!("{name}: {target} is on the sink but NOT enforced: {why}");
                }
                if extended {
                    report.extended += 1;
                } else {
                    report.added += 1;
                }
            }
            (Change::Remove { .. }, Ok(_)) => {
                self.store.forget(name, target)?;
                tracing::info!("{name}: {target} removed");
                report.removed += 1;
            }
            (change, Err(e)) => {
                let lease = match change {
                    Change::Add { lease, .. } | Change::Remove { lease, .. } => lease,
                };
                let prev = self.store.records_of(name, std::slice::from_ref(target))?;
                let attempts = prev.first().map_or(0, |r| r.attempts) + 1;
                let delay = self.backoff(e.retry, attempts);
                self.store
                    .record_failure(name, target, lease, &e.message, now + delay, now)?;
                tracing::warn!(
                    "{name}: {} {target} failed (attempt {attempts}, next try in {delay}s): {}",
                    change.verb(),
                    e.message
                );
                report.failed += 1;
                report.error = Some(e.message);
            }
        }
        Ok(())
    }

    /// Seconds to wait before attempt `attempts + 1`: doubling from `retry_initial` up to
    /// `retry_max` for transient failures, `retry_refused` for refusals; ±25 % jitter so a
    /// fleet does not retry in lockstep.
    fn backoff(&self, retry: Retry, attempts: i64) -> i64 {
        let base = match retry {
            Retry::Soon => {
                let exp = 2f64.powi((attempts - 1).clamp(0, 30) as i32);
                (self.retry.retry_initial * exp).min(self.retry.retry_max)
            }
            Retry::Later => self.retry.retry_refused,
        };
        let jitter = 0.75 + fastrand::f64() * 0.5;
        (base * jitter).round().max(1.0) as i64
    }
}

/// The lease shown for an entry netban finds on a sink without knowing why it is there.
fn unknown_lease() -> crate::sink::LeaseInfo {
    crate::sink::LeaseInfo {
        jail: "unknown".into(),
        origin: "local".into(),
        bantime: 0,
        until: None,
    }
}

fn to_change(step: &Step, sink: &dyn Sink, now: i64) -> Change {
    match step {
        Step::Add { desired, remote_id } => Change::Add {
            target: desired.target,
            expires: sink.expiry_for(desired.until, now),
            lease: desired.lease.clone(),
            remote_id: remote_id.clone(),
        },
        Step::Remove {
            target,
            remote_id,
            lease,
            ..
        } => Change::Remove {
            target: *target,
            remote_id: remote_id.clone(),
            lease: lease.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, GuardConfig};
    use crate::lease::{Origin, Until};
    use crate::sink::{Applied, Outcome};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A sink double that records calls and fails while `down` is set.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        down: AtomicBool,
        listed: Mutex<Option<Vec<crate::sink::HeldEntry>>>,
    }

    #[async_trait::async_trait]
    impl Sink for Recorder {
        fn name(&self) -> &str {
            "rec"
        }
        fn max_batch(&self) -> usize {
            2
        }
        async fn apply(&self, changes: &[Change], _deadline: Instant) -> Vec<Outcome> {
            let down = self.down.load(Ordering::SeqCst);
            let mut calls = self.calls.lock().unwrap();
            changes
                .iter()
                .map(|c| {
                    calls.push(format!("{} {}", c.verb(), c.target()));
                    if down {
                        Err(SinkError::soon("connection refused"))
                    } else {
                        Ok(Applied {
                            remote_id: Some(c.target().to_string()),
                            ..Applied::default()
                        })
                    }
                })
                .collect()
        }
        async fn held(
            &self,
            _deadline: Instant,
        ) -> Result<Option<Vec<crate::sink::HeldEntry>>, SinkError> {
            Ok(self.listed.lock().unwrap().clone())
        }
        async fn check(&self, _deadline: Instant) -> Result<String, SinkError> {
            Ok(String::new())
        }
    }

    struct Fixed(Arc<Recorder>);
    impl SinkFactory for Fixed {
        fn build(&self, _c: &SinkConfig) -> Result<Arc<dyn Sink>, String> {
            Ok(self.0.clone())
        }
    }

    fn engine(dir: &std::path::Path) -> (Engine, Arc<Recorder>, Arc<Store>) {
        let cfg = Config::parse(
            "[[sink]]\nname=\"rec\"\ntype=\"exec\"\nban=[\"/bin/true\"]\n",
            std::path::Path::new("t"),
        )
        .unwrap();
        let store = Arc::new(Store::open(dir).unwrap());
        let guard = Guard::new(&GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        })
        .unwrap();
        let rec = Arc::new(Recorder::default());
        let e = Engine::new(
            store.clone(),
            guard,
            &cfg.sinks,
            Box::new(Fixed(rec.clone())),
            ReconcileConfig::default(),
        );
        (e, rec, store)
    }

    fn ban(store: &Store, ip: &str, jail: &str) {
        let l = Lease {
            target: Target::parse(ip).unwrap(),
            jail: jail.into(),
            origin: Origin::Local,
            until: Until::Never,
            bantime: -1,
            since: 0,
        };
        store.upsert_lease(&l, 0).unwrap();
    }

    fn opts() -> PassOptions {
        PassOptions {
            deadline: Instant::now() + Duration::from_secs(5),
            force: false,
            repair: false,
            dry_run: false,
        }
    }

    #[tokio::test]
    async fn reconcile_twice_changes_nothing_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let (e, rec, store) = engine(dir.path());
        ban(&store, "192.0.2.1", "sshd");
        ban(&store, "192.0.2.1", "postfix");
        ban(&store, "192.0.2.2", "sshd");
        assert_eq!(e.run(&Scope::All, opts()).await.unwrap().changes(), 2);
        assert_eq!(e.run(&Scope::All, opts()).await.unwrap().changes(), 0);
        // One jail's unban keeps the target; the last one removes it.
        store
            .remove_lease(&Target::parse("192.0.2.1").unwrap(), "sshd", &Origin::Local)
            .unwrap();
        assert_eq!(e.run(&Scope::All, opts()).await.unwrap().changes(), 0);
        store
            .remove_lease(
                &Target::parse("192.0.2.1").unwrap(),
                "postfix",
                &Origin::Local,
            )
            .unwrap();
        let r = e.run(&Scope::All, opts()).await.unwrap();
        assert_eq!(r.sinks[0].removed, 1);
        assert_eq!(
            rec.calls.lock().unwrap().as_slice(),
            [
                "add 192.0.2.1/32",
                "add 192.0.2.2/32",
                "remove 192.0.2.1/32"
            ]
        );
    }

    #[tokio::test]
    async fn an_unavailable_sink_is_not_hammered_and_recovers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (e, rec, store) = engine(dir.path());
        for i in 1..=7 {
            ban(&store, &format!("192.0.2.{i}"), "sshd");
        }
        rec.down.store(true, Ordering::SeqCst);
        let r = e.run(&Scope::All, opts()).await.unwrap();
        // The first batch of two failed; the other five were not tried.
        assert_eq!((r.sinks[0].failed, r.sinks[0].deferred), (2, 5));
        assert_eq!(rec.calls.lock().unwrap().len(), 2);
        rec.down.store(false, Ordering::SeqCst);
        // The five never tried are due; the two failed ones wait for their backoff until a
        // success shows the sink is back, which makes them due at once.
        let r = e.run(&Scope::All, opts()).await.unwrap();
        assert_eq!(r.sinks[0].added, 5);
        let r = e.run(&Scope::All, opts()).await.unwrap();
        assert_eq!(r.sinks[0].added, 2);
        assert!(e.run(&Scope::All, opts()).await.unwrap().converged());
    }

    #[tokio::test]
    async fn dry_run_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (e, rec, store) = engine(dir.path());
        ban(&store, "192.0.2.1", "sshd");
        let r = e
            .run(
                &Scope::All,
                PassOptions {
                    dry_run: true,
                    ..opts()
                },
            )
            .await
            .unwrap();
        assert_eq!(r.sinks[0].not_attempted, 1);
        assert!(rec.calls.lock().unwrap().is_empty());
    }

    fn entry(ip: &str, id: &str, marked: bool) -> crate::sink::HeldEntry {
        crate::sink::HeldEntry {
            target: Target::parse(ip).unwrap(),
            remote_id: Some(id.into()),
            expires: None,
            marked,
            not_enforced: None,
        }
    }

    #[tokio::test]
    async fn repair_recreates_vanished_entries_removes_orphans_and_duplicates_and_spares_foreign_ones()
     {
        let dir = tempfile::tempdir().unwrap();
        let (e, rec, store) = engine(dir.path());
        ban(&store, "192.0.2.1", "sshd");
        ban(&store, "192.0.2.2", "sshd");
        e.run(&Scope::All, opts()).await.unwrap();
        rec.calls.lock().unwrap().clear();
        // The remote side lost 192.0.2.2, holds 192.0.2.1 twice (ids "192.0.2.1/32" from our
        // add and "99" from a race), an orphan with our mark, and a foreign entry.
        *rec.listed.lock().unwrap() = Some(vec![
            entry("192.0.2.1", "192.0.2.1/32", true),
            entry("192.0.2.1", "99", true),
            entry("198.51.100.7", "50", true),
            entry("203.0.113.9", "60", false),
        ]);
        let repair = PassOptions {
            repair: true,
            ..opts()
        };
        let r = e.run(&Scope::All, repair).await.unwrap();
        let mut calls = rec.calls.lock().unwrap().clone();
        calls.sort();
        assert_eq!(
            calls,
            [
                "add 192.0.2.2/32",
                "remove 192.0.2.1/32",
                "remove 198.51.100.7/32"
            ]
        );
        // The duplicate's removal kept the record of the entry that stays.
        let kept = store
            .records_of("rec", &[Target::parse("192.0.2.1").unwrap()])
            .unwrap();
        assert_eq!(kept[0].remote_id.as_deref(), Some("192.0.2.1/32"));
        assert!(r.sinks[0].repaired >= 2, "{r:?}");
    }
}
