//! [`Stats`]: the one object the daemon, `netban stats` and the web API hold. It owns the
//! configured zone, retention, this host's id, the enrichment databases and the backend, and
//! turns outbox events into counted, enriched bans.
//!
//! The glue around it is the outbox consumer: read `id > cursor` in order, hand the batch to
//! [`Stats::ingest`], and commit the cursor to the batch's last id only once `ingest`
//! returned `Ok`. A crash in between re-reads the batch; the backend's per-host mark makes
//! the second `ingest` count nothing twice.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use jiff::tz::TimeZone;
use netban_core::Target;
use netban_core::config::Secret;

use crate::backend::{Recorded, StatsBackend, check_host};
use crate::config::{BackendKind, StatsConfig};
use crate::error::StatsError;
use crate::geo::Geo;
use crate::model::{Day, EnrichedEvent, SourceEvent, UNKNOWN};
use crate::redis::RedisBackend;
use crate::report::{Report, Summary, Window};
use crate::sqlite::SqliteBackend;

/// Where [`Stats::open`] finds what `[stats]` does not say.
#[derive(Debug, Clone, Copy)]
pub struct OpenEnv<'a> {
    /// `state_dir`: `stats.db` goes there.
    pub state_dir: &'a Path,
    /// This host's id (`host_id`).
    pub host_id: &'a str,
    /// `[cluster] redis`, when configured: the Redis backend's default.
    pub cluster_redis: Option<&'a Secret>,
    /// `[cluster] prefix`, when configured.
    pub cluster_prefix: Option<&'a str>,
}

/// What one [`Stats::ingest`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Events handed in.
    pub read: usize,
    /// Of those, bans that count (local lease starts, not restores).
    pub counted: usize,
    /// Counted now (the rest of `counted` was recorded before).
    pub recorded: Recorded,
    /// The highest event id handed in: the outbox cursor to commit.
    pub last_id: Option<i64>,
}

pub struct Stats {
    host: String,
    zone: TimeZone,
    retention_days: u32,
    geo: Arc<Geo>,
    backend: Arc<dyn StatsBackend>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("host", &self.host)
            .field("zone", &self.zone.iana_name())
            .field("retention_days", &self.retention_days)
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Stats {
    /// Builds the configured backend and loads the mmdb files. Validates `cfg` first. The
    /// Redis backend connects on first use, so an unreachable Redis does not fail here.
    pub fn open(cfg: &StatsConfig, env: OpenEnv<'_>) -> Result<Stats, StatsError> {
        cfg.validate(env.cluster_redis.is_some())?;
        let backend: Arc<dyn StatsBackend> = match cfg.backend {
            BackendKind::Sqlite => Arc::new(SqliteBackend::open(&StatsConfig::sqlite_path(
                env.state_dir,
            ))?),
            BackendKind::Redis => Arc::new(RedisBackend::connect(
                &cfg.redis_url(env.cluster_redis)?,
                &cfg.redis_prefix(env.cluster_prefix),
                cfg.retention_days,
            )?),
        };
        let geo = Arc::new(Geo::open(cfg.country_db.clone(), cfg.asn_db.clone()));
        Stats::new(
            env.host_id,
            cfg.time_zone()?,
            cfg.retention_days,
            geo,
            backend,
        )
    }

    /// From parts (tests, the benchmark, a web server sharing one [`Geo`]).
    pub fn new(
        host: &str,
        zone: TimeZone,
        retention_days: u32,
        geo: Arc<Geo>,
        backend: Arc<dyn StatsBackend>,
    ) -> Result<Stats, StatsError> {
        check_host(host)?;
        Ok(Stats {
            host: host.to_string(),
            zone,
            retention_days,
            geo,
            backend,
        })
    }

    pub fn backend(&self) -> &Arc<dyn StatsBackend> {
        &self.backend
    }

    pub fn geo(&self) -> &Arc<Geo> {
        &self.geo
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The counted ban `e` becomes, looked up in the mmdb files.
    pub fn enrich(&self, e: &SourceEvent) -> EnrichedEvent {
        let info = self.geo.lookup(&e.target);
        EnrichedEvent {
            id: e.id,
            at: e.at,
            day: Day::of(e.at, &self.zone),
            host: self.host.clone(),
            target: e.target,
            jail: e.jail.clone(),
            country: info.country.unwrap_or_else(|| UNKNOWN.to_string()),
            asn: info.asn,
            org: info.org,
            network: info
                .asn_network
                .map(|n| n.to_string())
                .unwrap_or_else(|| fallback_network(&e.target)),
        }
    }

    /// Counts the bans among `events` (outbox order). Safe to call again with the same
    /// events after a failure or a crash: nothing is counted twice.
    pub async fn ingest(&self, events: &[SourceEvent]) -> Result<Ingested, StatsError> {
        let counted: Vec<EnrichedEvent> = events
            .iter()
            .filter(|e| e.is_counted())
            .map(|e| self.enrich(e))
            .collect();
        let recorded = if counted.is_empty() {
            Recorded::default()
        } else {
            self.backend.record(&counted).await?
        };
        if recorded.duplicates > 0 {
            let mark = self.backend.mark(&self.host).await.unwrap_or(0);
            tracing::warn!(
                "stats: {} bans of host {} at or below its recorded event id {mark} were skipped as \
                 already counted (expected once after a crash; if it repeats, another state \
                 database writes statistics as host {}: give each host its own host_id)",
                recorded.duplicates,
                self.host,
                self.host
            );
        }
        Ok(Ingested {
            read: events.len(),
            counted: counted.len(),
            recorded,
            last_id: events.iter().map(|e| e.id).max(),
        })
    }

    /// The last `days` days up to the day of `now`.
    pub fn window(&self, days: u32, now: i64) -> Window {
        Window::last(days, now, &self.zone)
    }

    /// `netban stats --json`.
    pub async fn report(&self, days: u32, now: i64) -> Result<Report, StatsError> {
        self.backend.report(self.window(days, now)).await
    }

    /// The report and every top list over the last `days` days, `limit` rows each: the
    /// `netban stats` table and the dashboard.
    pub async fn summary(&self, days: u32, now: i64, limit: usize) -> Result<Summary, StatsError> {
        self.backend.summary(self.window(days, now), limit).await
    }

    /// Forgets days older than the retention (run it daily). Returns rows/keys removed.
    pub async fn prune(&self, now: i64) -> Result<u64, StatsError> {
        let keep_from = Day::of(now, &self.zone).minus(self.retention_days as i32 - 1);
        self.backend.prune(keep_from).await
    }
}

/// The /24 (IPv4) or /48 (IPv6) around a target the ASN database knows nothing about, or the
/// target itself when it is wider.
pub fn fallback_network(t: &Target) -> String {
    let len = match t.addr() {
        IpAddr::V4(_) => 24,
        IpAddr::V6(_) => 48,
    };
    if t.prefix_len() <= len {
        return t.to_string();
    }
    IpNet::new(t.addr(), len)
        .map(|n| n.trunc().to_string())
        .unwrap_or_else(|_| t.to_string())
}
