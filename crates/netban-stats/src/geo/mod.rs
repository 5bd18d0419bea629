//! Enrichment: which country and which autonomous system a target belongs to.
//!
//! Answers come from mmdb files (MaxMind GeoLite2, DB-IP lite) named by `[stats] country_db`
//! and `asn_db`, read in full into memory. Enrichment runs in the stats ingester, off
//! fail2ban's path, and never fails: no file, a broken file or an address the database does
//! not cover gives `unknown` (an absent field). Files are re-read when replaced ([`db`]), and
//! answers are cached by the network they hold for ([`cache`]).

mod cache;
mod db;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netban_core::Target;

pub use cache::DEFAULT_CAPACITY;
pub use db::MAX_DB_BYTES;
use db::{DbFile, Kind};

/// How often the files' stamps are checked by default.
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(5);

/// What the databases say about one target. `None` fields are shown as `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166 alpha-2 code, upper case.
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub org: Option<String>,
    /// The ASN database's network containing the target, when it has data for it.
    pub asn_network: Option<IpNet>,
}

/// Tuning for [`Geo::with_options`].
#[derive(Debug, Clone)]
pub struct GeoOptions {
    /// Check the files for replacement at most this often.
    pub check_every: Duration,
    /// Entries per cache generation (0: no cache).
    pub cache_capacity: usize,
}

impl Default for GeoOptions {
    fn default() -> Self {
        GeoOptions {
            check_every: DEFAULT_CHECK_EVERY,
            cache_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Lookup counters, for the benchmark and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeoCounters {
    pub lookups: u64,
    pub cache_hits: u64,
    pub reloads: u64,
}

/// The enrichment databases. Cheap to share (`Arc<Geo>`); lookups take a short lock.
#[derive(Debug)]
pub struct Geo {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    country: Option<DbFile>,
    asn: Option<DbFile>,
    cache: cache::NetCache,
    use_cache: bool,
    check_every: Duration,
    last_check: Instant,
    counters: GeoCounters,
}

impl Geo {
    /// Opens the configured files (either may be absent). A file that cannot be loaded now is
    /// logged and loaded when it appears or is fixed.
    pub fn open(country_db: Option<PathBuf>, asn_db: Option<PathBuf>) -> Geo {
        Geo::with_options(country_db, asn_db, GeoOptions::default())
    }

    pub fn with_options(
        country_db: Option<PathBuf>,
        asn_db: Option<PathBuf>,
        opts: GeoOptions,
    ) -> Geo {
        Geo {
            inner: Mutex::new(Inner {
                country: country_db.map(|p| DbFile::open(Kind::Country, p)),
                asn: asn_db.map(|p| DbFile::open(Kind::Asn, p)),
                cache: cache::NetCache::new(opts.cache_capacity),
                use_cache: opts.cache_capacity > 0,
                check_every: opts.check_every,
                last_check: Instant::now(),
                counters: GeoCounters::default(),
            }),
        }
    }

    /// No databases: every answer is unknown.
    pub fn none() -> Geo {
        Geo::open(None, None)
    }

    /// What the databases say about `target` (its network address).
    pub fn lookup(&self, target: &Target) -> GeoInfo {
        let mut inner = self.lock();
        inner.maybe_refresh();
        inner.counters.lookups += 1;
        let addr = target.addr();
        if inner.use_cache
            && let Some(hit) = inner.cache.get(addr)
        {
            inner.counters.cache_hits += 1;
            return hit;
        }
        let (info, key) = inner.query(addr);
        if inner.use_cache
            && let Some(key) = key
        {
            inner.cache.insert(key, info.clone());
        }
        info
    }

    /// The same answer without the cache (for the benchmark's comparison).
    pub fn lookup_uncached(&self, target: &Target) -> GeoInfo {
        let mut inner = self.lock();
        inner.maybe_refresh();
        inner.counters.lookups += 1;
        inner.query(target.addr()).0
    }

    /// Checks the files now instead of at the next interval.
    pub fn refresh_now(&self) {
        let mut inner = self.lock();
        inner.refresh();
    }

    pub fn counters(&self) -> GeoCounters {
        self.lock().counters
    }

    /// Entries in the cache.
    pub fn cached(&self) -> usize {
        self.lock().cache.len()
    }

    /// Whether a country (resp. ASN) database is loaded.
    pub fn loaded(&self) -> (bool, bool) {
        let inner = self.lock();
        (
            inner.country.as_ref().is_some_and(DbFile::is_loaded),
            inner.asn.as_ref().is_some_and(DbFile::is_loaded),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves nothing half-updated that matters (a cache).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn maybe_refresh(&mut self) {
        if self.last_check.elapsed() >= self.check_every {
            self.refresh();
        }
    }

    fn refresh(&mut self) {
        self.last_check = Instant::now();
        let mut changed = false;
        for db in [self.country.as_mut(), self.asn.as_mut()]
            .into_iter()
            .flatten()
        {
            changed |= db.refresh();
        }
        if changed {
            self.cache.clear();
            self.counters.reloads += 1;
        }
    }

    /// Both databases, and the network for which the combined answer holds (the more specific
    /// of the two answers' networks; `None`: do not cache).
    fn query(&self, addr: IpAddr) -> (GeoInfo, Option<IpNet>) {
        let c = self.country.as_ref().map(|d| d.lookup(addr));
        let a = self.asn.as_ref().map(|d| d.lookup(addr));
        let mut key: Option<IpNet> = None;
        let mut answered = false;
        for net in [&c, &a].into_iter().flatten().filter_map(|x| x.network) {
            answered = true;
            key = match key {
                Some(k) if k.prefix_len() >= net.prefix_len() => Some(k),
                _ => Some(net),
            };
        }
        let a_has_data = a
            .as_ref()
            .is_some_and(|a| a.asn.is_some() || a.org.is_some());
        let info = GeoInfo {
            country: c.as_ref().and_then(|c| c.country.clone()),
            asn: a.as_ref().and_then(|a| a.asn),
            org: a.as_ref().and_then(|a| a.org.clone()),
            asn_network: if a_has_data {
                a.as_ref().and_then(|a| a.network)
            } else {
                None
            },
        };
        // Every configured database must have answered with a network for the key to hold.
        let all = [&c, &a].into_iter().flatten().all(|x| x.network.is_some());
        (info, if answered && all { key } else { None })
    }
}

#[cfg(test)]
mod tests;
