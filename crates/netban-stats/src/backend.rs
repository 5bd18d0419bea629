//! The trait every statistics store implements: SQLite ([`crate::sqlite`]) for one host, Redis
//! ([`crate::redis`]) for a fleet. One story suite (`tests/story.rs`) runs against both.
//!
//! Writes are **exactly once per host**: each host's events carry its outbox ids, which only
//! grow; a backend stores, per host and atomically with the counts, the highest id it has
//! applied (the *mark*), and ignores any event at or below it. A caller that crashed after
//! recording but before moving its outbox cursor simply records the same batch again.
//!
//! The trait is async (the daemon is tokio); the SQLite backend runs its statements on the
//! blocking pool, so no query stalls the runtime.

use async_trait::async_trait;

use crate::error::StatsError;
use crate::model::{Day, EnrichedEvent};
use crate::report::{AsnCount, HostCount, NetworkCount, Offender, Report, Summary, Window};

/// What [`StatsBackend::record`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Events counted now.
    pub applied: usize,
    /// Events at or below their host's mark: already counted before, ignored.
    pub duplicates: usize,
}

#[async_trait]
pub trait StatsBackend: Send + Sync {
    /// `sqlite` or `redis`, for logs and `netban status`.
    fn name(&self) -> &'static str;

    /// Counts `events` (any hosts, any order) exactly once per `(host, id)`.
    async fn record(&self, events: &[EnrichedEvent]) -> Result<Recorded, StatsError>;

    /// The highest event id recorded for `host` (0: none).
    async fn mark(&self, host: &str) -> Result<i64, StatsError>;

    /// The DESIGN.md report over `window`.
    async fn report(&self, window: Window) -> Result<Report, StatsError>;

    /// Autonomous systems with the most bans, with their organisation.
    async fn top_asns(&self, window: Window, limit: usize) -> Result<Vec<AsnCount>, StatsError>;

    /// Networks with the most bans.
    async fn top_networks(
        &self,
        window: Window,
        limit: usize,
    ) -> Result<Vec<NetworkCount>, StatsError>;

    /// Targets banned most often (ties: the most recent first).
    async fn top_offenders(
        &self,
        window: Window,
        limit: usize,
    ) -> Result<Vec<Offender>, StatsError>;

    /// Bans per host (SQLite: this host; Redis: every host that wrote).
    async fn hosts(&self, window: Window) -> Result<Vec<HostCount>, StatsError>;

    /// All of the above over one window, `limit` rows per list: what a dashboard refresh
    /// asks. By default the five queries at once; a backend that can answer them in one pass
    /// over its data (SQLite) does so.
    async fn summary(&self, window: Window, limit: usize) -> Result<Summary, StatsError> {
        let (report, top_asns, top_networks, top_offenders, hosts) = tokio::try_join!(
            self.report(window),
            self.top_asns(window, limit),
            self.top_networks(window, limit),
            self.top_offenders(window, limit),
            self.hosts(window),
        )?;
        Ok(Summary {
            report,
            top_asns,
            top_networks,
            top_offenders,
            hosts,
        })
    }

    /// Forgets every day before `keep_from`. Returns how many stored rows or keys went.
    async fn prune(&self, keep_from: Day) -> Result<u64, StatsError>;
}

/// Checks a host id before it becomes part of keys and rollup fields.
pub(crate) fn check_host(host: &str) -> Result<(), StatsError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StatsError::Host {
            host: host.chars().take(64).collect(),
        })
    }
}
