//! Prometheus metrics of the daemon (`/metrics`, OpenMetrics text format).
//!
//! - `netban_leases`: live leases;
//! - `netban_sink_changes_total{sink,op,result}`: changes applied or failed per sink;
//! - `netban_sink_held{sink}`, `netban_sink_pending{sink}`, `netban_sink_failing{sink}`;
//! - `netban_sink_apply_duration_seconds{sink}`: time per batch (one request for a single
//!   ban on ExaFS);
//! - `netban_sink_kept{sink}`: entries left on a sink on purpose (not netban's to remove);
//! - `netban_guard_refusals_total`: targets the guard refused, CLI and daemon together (read
//!   from the store at each scrape, so it never lags);
//! - `netban_guard_allowlist_problems`: allowlist files that cannot be used as they are;
//! - `netban_reconcile_passes_total`: passes, one per sink each;
//! - `netban_outbox_backlog{consumer}`: events an outbox consumer (`stats`, `cluster`,
//!   `fanout`) has not read yet;
//! - the cluster's, in [`cluster`].
//!
//! No metric has an address in a label: per-target detail is `netban list` / `explain`.

mod cluster;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use netban_core::reconcile::{Engine, Observer, SinkReport};
use netban_core::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    sink: String,
    op: String,
    result: String,
}

fn apply_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    leases: Gauge,
    changes: Family<ChangeLabel, Counter>,
    held: Family<SinkLabel, Gauge>,
    pending: Family<SinkLabel, Gauge>,
    failing: Family<SinkLabel, Gauge>,
    kept: Family<SinkLabel, Gauge>,
    allowlist_problems: Gauge,
    apply: Family<SinkLabel, Histogram, fn() -> Histogram>,
    refusals: Counter,
    refusals_seen: AtomicU64,
    passes: Counter,
    backlog: Family<ConsumerLabel, Gauge>,
    cluster: cluster::ClusterMetrics,
    lock: Mutex<()>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabel {
    consumer: String,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("netban");
        let leases = Gauge::default();
        let changes = Family::<ChangeLabel, Counter>::default();
        let held = Family::<SinkLabel, Gauge>::default();
        let pending = Family::<SinkLabel, Gauge>::default();
        let failing = Family::<SinkLabel, Gauge>::default();
        let kept = Family::<SinkLabel, Gauge>::default();
        let allowlist_problems = Gauge::default();
        let apply = Family::<SinkLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            apply_histogram,
        );
        let refusals = Counter::default();
        let passes = Counter::default();
        registry.register("leases", "Live leases", leases.clone());
        registry.register(
            "sink_changes",
            "Changes carried out on a sink, by operation and result",
            changes.clone(),
        );
        registry.register(
            "sink_held",
            "Targets a sink confirmed it holds",
            held.clone(),
        );
        registry.register(
            "sink_pending",
            "Changes waiting on a sink after the last pass",
            pending.clone(),
        );
        registry.register(
            "sink_failing",
            "Targets whose last change on a sink failed",
            failing.clone(),
        );
        registry.register(
            "sink_kept",
            "Entries left on a sink on purpose: made by somebody else, or by a lost state",
            kept.clone(),
        );
        registry.register(
            "guard_allowlist_problems",
            "Allowlist files that cannot be used as they are (their last good version is in force)",
            allowlist_problems.clone(),
        );
        registry.register(
            "sink_apply_duration_seconds",
            "Time a sink took for one batch of changes",
            apply.clone(),
        );
        registry.register(
            "guard_refusals",
            "Targets the guard refused",
            refusals.clone(),
        );
        registry.register(
            "reconcile_passes",
            "Reconcile passes run by the daemon, one per sink each",
            passes.clone(),
        );
        let backlog = Family::<ConsumerLabel, Gauge>::default();
        registry.register(
            "outbox_backlog",
            "Events an outbox consumer has not read yet",
            backlog.clone(),
        );
        let cluster = cluster::ClusterMetrics::register(&mut registry);
        Metrics {
            registry,
            leases,
            changes,
            held,
            pending,
            failing,
            kept,
            allowlist_problems,
            apply,
            refusals,
            refusals_seen: AtomicU64::new(0),
            passes,
            backlog,
            cluster,
            lock: Mutex::new(()),
        }
    }

    /// Updates a sink's gauges after its pass, from the report and the store.
    pub fn after_sink_pass(&self, report: &SinkReport, store: &Store, now: i64) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.passes.inc();
        let label = SinkLabel {
            sink: report.sink.clone(),
        };
        self.pending
            .get_or_create(&label)
            .set((report.deferred + report.failed + report.not_attempted) as i64);
        if let Ok(n) = store.live_lease_count(now) {
            self.leases.set(n);
        }
        if let Ok(counts) = store.record_counts() {
            let (held, failing) = counts
                .iter()
                .find(|(name, _, _)| *name == report.sink)
                .map_or((0, 0), |(_, h, f)| (*h, *f));
            self.held.get_or_create(&label).set(held);
            self.failing.get_or_create(&label).set(failing);
        }
    }

    /// Sets the initial refusal count so a restart does not replay history as new.
    pub fn baseline(&self, store: &Store) {
        self.refusals_seen
            .store(refusal_count(store), Ordering::Relaxed);
    }

    /// The OpenMetrics text, with the values read at scrape time brought up to date.
    pub fn encode(&self, store: &Store, engine: &Engine, scrape: &Scrape) -> String {
        {
            let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(n) = store.live_lease_count(netban_core::clock::now()) {
                self.leases.set(n);
            }
            for name in &scrape.consumers {
                if let Ok(n) = netban_core::outbox::Consumer::new(name).lag(store) {
                    self.backlog
                        .get_or_create(&ConsumerLabel {
                            consumer: (*name).to_string(),
                        })
                        .set(n);
                }
            }
            if let Some(c) = &scrape.cluster
                && let Ok(s) = c.status()
            {
                self.cluster.update(&s);
            }
            // Refusals are counted in the store (the CLI refuses most of them); export the
            // growth since the last look so the counter stays monotonic.
            let total = refusal_count(store);
            let seen = self.refusals_seen.swap(total, Ordering::Relaxed);
            if total > seen {
                self.refusals.inc_by(total - seen);
            }
            if let Ok(kept) = store.kept(None) {
                for name in engine.sink_names() {
                    let n = kept.iter().filter(|k| k.sink == name).count();
                    self.kept
                        .get_or_create(&SinkLabel { sink: name })
                        .set(n as i64);
                }
            }
            self.allowlist_problems
                .set(engine.guard().problems().len() as i64);
        }
        self.text()
    }

    fn text(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("metrics: cannot encode: {e}");
        }
        out
    }
}

/// What a scrape reads besides the store and the engine.
#[derive(Default)]
pub struct Scrape {
    /// The outbox consumers the daemon runs.
    pub consumers: Vec<&'static str>,
    pub cluster: Option<netban_cluster::Cluster>,
}

/// Guard refusals counted in the store so far (the CLI refuses most of them).
fn refusal_count(store: &Store) -> u64 {
    store
        .counter("guard_refusals")
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

impl Observer for Metrics {
    fn batch(&self, sink: &str, _changes: usize, seconds: f64) {
        self.apply
            .get_or_create(&SinkLabel {
                sink: sink.to_string(),
            })
            .observe(seconds);
    }

    fn outcome(&self, sink: &str, verb: &str, ok: bool) {
        let label = ChangeLabel {
            sink: sink.to_string(),
            op: verb.to_string(),
            result: if ok { "ok" } else { "failed" }.to_string(),
        };
        self.changes.get_or_create(&label).inc();
    }
}
