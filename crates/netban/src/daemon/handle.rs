//! What every component shares: the store, the engine, the metrics, the bus.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netban_core::reconcile::Engine;
use netban_core::store::{Store, StoreError};

use super::bus::Bus;
use super::metrics::Metrics;

#[derive(Clone)]
pub struct DaemonHandle {
    pub store: Arc<Store>,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    pub bus: Bus,
    /// How often each sink's full check (listing, repair) runs.
    pub resync: Duration,
    /// The statistics, when `[stats]` is on.
    pub stats: Option<Arc<netban_stats::Stats>>,
    /// The cluster, when `[cluster]` is on.
    pub cluster: Option<netban_cluster::Cluster>,
    /// The outbox consumers the daemon runs (their cursors hold back pruning).
    pub consumers: Vec<&'static str>,
    /// Unix seconds when the daemon started.
    pub started: i64,
    beats: Arc<Mutex<HashMap<String, Instant>>>,
}

impl DaemonHandle {
    pub fn new(
        store: Arc<Store>,
        engine: Arc<Engine>,
        metrics: Arc<Metrics>,
        resync: Duration,
    ) -> DaemonHandle {
        DaemonHandle {
            store,
            engine,
            metrics,
            bus: Bus::new(),
            resync,
            stats: None,
            cluster: None,
            consumers: Vec::new(),
            started: netban_core::clock::now(),
            beats: Arc::default(),
        }
    }

    /// Runs `f` on the store on a blocking thread: SQLite may wait for another process's
    /// lock for seconds, and the runtime must keep answering meanwhile (issue 6).
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Task(format!("store task failed: {e}"))))
    }

    /// A loop `who` is alive.
    pub fn beat(&self, who: &str) {
        self.beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(who.to_string(), Instant::now());
    }

    /// A loop `who` ended on purpose (a sink removed by a reload).
    pub fn forget_beat(&self, who: &str) {
        self.beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(who);
    }

    /// The loops that have not beaten for longer than `limit`.
    pub fn stalled(&self, limit: Duration) -> Vec<(String, Duration)> {
        self.beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, t)| t.elapsed() > limit)
            .map(|(w, t)| (w.clone(), t.elapsed()))
            .collect()
    }
}
