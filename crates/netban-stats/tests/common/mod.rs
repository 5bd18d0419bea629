//! Shared pieces of the stats tests: a fixture per backend (SQLite in a temp dir, Redis on a
//! real redis-server from the harness), outbox events, and days relative to today.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::tz::TimeZone;
use netban_core::Target;
use netban_stats::redis::RedisBackend;
use netban_stats::sqlite::SqliteBackend;
use netban_stats::{Cause, Day, EventKind, Geo, SourceEvent, Stats, StatsBackend};
use netban_testsupport::redis::RedisServer;

pub fn geoip(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/geoip")
        .join(name)
}

pub fn test_geo() -> Arc<Geo> {
    Arc::new(Geo::open(
        Some(geoip("GeoLite2-Country-Test.mmdb")),
        Some(geoip("GeoLite2-ASN-Test.mmdb")),
    ))
}

/// A backend under test, with what keeps it alive.
pub struct Fixture {
    pub backend: Arc<dyn StatsBackend>,
    pub redis: Option<RedisServer>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("stats.db")).unwrap();
        Fixture {
            backend: Arc::new(backend),
            redis: None,
            dir,
        }
    }

    pub fn redis() -> Fixture {
        let server = RedisServer::start().expect("starting redis-server");
        let backend = RedisBackend::connect(
            &netban_core::config::Secret::new(server.url()),
            "netban",
            400,
        )
        .unwrap();
        Fixture {
            backend: Arc::new(backend),
            redis: Some(server),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `Stats` of `host` over this backend, UTC days, 400 days kept.
    pub fn stats(&self, host: &str) -> Stats {
        self.stats_in(host, TimeZone::UTC, 400)
    }

    pub fn stats_in(&self, host: &str, zone: TimeZone, retention_days: u32) -> Stats {
        Stats::new(host, zone, retention_days, test_geo(), self.backend.clone()).unwrap()
    }
}

/// Now (real time: Redis expires day keys by the real clock).
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Noon UTC, `ago` days before today (UTC).
pub fn noon(ago: i32) -> i64 {
    let today = Day::of(now(), &TimeZone::UTC);
    i64::from(today.minus(ago).0) * 86_400 + 12 * 3600
}

pub fn day(ago: i32) -> String {
    Day::of(now(), &TimeZone::UTC).minus(ago).to_string()
}

pub fn event(id: i64, at: i64, kind: EventKind, cause: Cause, ip: &str, jail: &str) -> SourceEvent {
    SourceEvent {
        id,
        at,
        kind,
        cause,
        target: Target::parse(ip).unwrap(),
        jail: jail.to_string(),
        origin: "local".to_string(),
    }
}

/// A local ban starting.
pub fn ban(id: i64, at: i64, ip: &str, jail: &str) -> SourceEvent {
    event(id, at, EventKind::Start, Cause::Ban, ip, jail)
}
