//! The Redis statistics backend: fleet statistics. Every host writes its own bans under one
//! prefix, any host's report reads the whole fleet, and per-host numbers stay apart.
//!
//! Keys (`P` is the prefix, default `netban`; `D` a day, `YYYY-MM-DD`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:stats:mark` | hash | host -> highest outbox id counted (exactly once per host) |
//! | `P:stats:seen` | hash | host -> unix time of its latest ban |
//! | `P:stats:asorg` | hash | AS number -> organisation (bounded by the number of ASes) |
//! | `P:stats:days` | zset | the days that have keys (for pruning) |
//! | `P:stats:day:D:counts` | hash | `t` total, `c:GB` per country, `j:sshd` per jail |
//! | `P:stats:day:D:asns` | hash | `AS29518` / `unknown` -> bans |
//! | `P:stats:day:D:hosts` | hash | `h:HOST` bans, `hj:HOST<TAB>JAIL` bans |
//! | `P:stats:day:D:targets` | HyperLogLog | distinct targets (standard error 0.81 %) |
//! | `P:stats:day:D:offenders` | hash | target -> bans |
//! | `P:stats:day:D:tinfo` | hash | target -> `at<TAB>country<TAB>AS<TAB>jail` of its latest ban |
//! | `P:stats:day:D:networks` | hash | network -> bans |
//! | `P:stats:day:D:ninfo` | hash | network -> `at<TAB>country<TAB>AS` of its latest ban |
//! | `P:stats:roll:through` | string | the last day of the rolling window |
//! | `P:stats:roll:offenders`, `...:networks` | zset | bans over the 30 days ending there |
//!
//! Top offenders and networks over the default 30-day window read a rolling sorted set,
//! head first (`ZREVRANGE`): when the window's last day moves (the first read or write of a
//! new day), `roll.lua` subtracts the days that left it (or rebuilds it from the window's
//! per-day hashes after a jump of 30 days or more), and `record.lua` adds every ban of the
//! window's days to it in the same script as the counts. Summing 30
//! days of hashes per request instead costs 100–200 ms at 2,500 bans a day; other windows
//! still do that (`sum_top.lua`).
//!
//! Distinct targets across days are the union of the days' HyperLogLogs (`PFCOUNT k1 k2 ...`):
//! 12 KiB per day at most, instead of a set of every target (tens of MB for a million), at the
//! price of an estimate (exact in practice for small counts, ±0.81 % standard error beyond).
//! Every day key expires `retention_days` after its day (`EXPIREAT`), and
//! [`StatsBackend::prune`] deletes older days at once; the other hashes are bounded by the
//! number of hosts and of ASes.
//!
//! Writes are one Lua script per host and batch (`record.lua`, [`write`]): it skips events at
//! or below the host's mark and moves the mark with the counts, atomically. Window sums (ASes,
//! offenders, networks) run server-side in `sum_top.lua`, which returns only the head of the
//! list: sending every day's hash to the client and decoding it there cost ten times more,
//! and `ZUNIONSTORE` over per-day sorted sets more still. redis-rs times a
//! response out after 500 ms by default; the connection here allows [`RESPONSE_TIMEOUT`]
//! (a 400-day union is heavier than a single command) and reconnects on its own.

mod read;
mod write;

use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use std::time::Duration;

use async_trait::async_trait;
use netban_core::config::Secret;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::backend::{Recorded, StatsBackend};
use crate::error::StatsError;
use crate::model::{Day, EnrichedEvent};
use crate::report::{AsnCount, HostCount, NetworkCount, Offender, Report, Window};

/// Longest wait for one reply.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Statistics in a Redis shared by the fleet. Cheap to clone.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    keys: Keys,
    retention_days: u32,
    /// The last day this process made the rolling window end on (a hint: the script
    /// checks the stored day itself).
    rolled_to: Arc<AtomicI32>,
}

/// Days of the rolling top lists: the dashboard's default window.
pub const ROLL_DAYS: u32 = 30;

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never shown.
        f.debug_struct("RedisBackend")
            .field("prefix", &self.keys.prefix)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// The per-day keys, in the order `record.lua` expects them.
pub(crate) const DAY_KEYS: [&str; 8] = [
    "counts",
    "asns",
    "hosts",
    "targets",
    "offenders",
    "tinfo",
    "networks",
    "ninfo",
];

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: format!("{prefix}:stats"),
        }
    }
    pub(crate) fn mark(&self) -> String {
        format!("{}:mark", self.prefix)
    }
    pub(crate) fn seen(&self) -> String {
        format!("{}:seen", self.prefix)
    }
    pub(crate) fn asorg(&self) -> String {
        format!("{}:asorg", self.prefix)
    }
    pub(crate) fn days(&self) -> String {
        format!("{}:days", self.prefix)
    }
    /// `P:stats:roll:WHAT`: `through`, `offenders`, `networks`.
    pub(crate) fn roll(&self, what: &str) -> String {
        format!("{}:roll:{what}", self.prefix)
    }
    /// `P:stats:day:D:WHAT`, `what` one of [`DAY_KEYS`].
    pub(crate) fn day(&self, day: Day, what: &str) -> String {
        format!("{}:day:{day}:{what}", self.prefix)
    }
}

impl RedisBackend {
    /// Connects lazily: the first command connects, and later ones reconnect after an outage.
    /// Only a malformed URL fails here.
    pub fn connect(
        url: &Secret,
        prefix: &str,
        retention_days: u32,
    ) -> Result<RedisBackend, StatsError> {
        if url.expose().starts_with("rediss://") {
            // rustls needs a process-wide crypto provider; another component may have set it.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        // The error text of a bad URL may quote it: describe it without the URL.
        let client = redis::Client::open(url.expose()).map_err(|e| StatsError::RedisUrl {
            detail: format!("{:?}", e.kind()),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(StatsError::redis("connecting"))?;
        Ok(RedisBackend {
            conn,
            keys: Keys::new(prefix),
            retention_days,
            rolled_to: Arc::new(AtomicI32::new(i32::MIN)),
        })
    }

    /// `PING`: for `netban check`.
    pub async fn ping(&self) -> Result<(), StatsError> {
        let mut c = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(StatsError::redis("PING"))?;
        Ok(())
    }

    /// `used_memory` of `INFO memory`, in bytes (for the benchmark).
    pub async fn used_memory(&self) -> Result<u64, StatsError> {
        let mut c = self.conn.clone();
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut c)
            .await
            .map_err(StatsError::redis("INFO memory"))?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

#[async_trait]
impl StatsBackend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn record(&self, events: &[EnrichedEvent]) -> Result<Recorded, StatsError> {
        write::record(self, events).await
    }

    async fn mark(&self, host: &str) -> Result<i64, StatsError> {
        let mut c = self.conn();
        let v: Option<i64> = redis::cmd("HGET")
            .arg(self.keys.mark())
            .arg(host)
            .query_async(&mut c)
            .await
            .map_err(StatsError::redis("reading the host mark"))?;
        Ok(v.unwrap_or(0))
    }

    async fn report(&self, window: Window) -> Result<Report, StatsError> {
        read::report(self, window).await
    }

    async fn top_asns(&self, window: Window, limit: usize) -> Result<Vec<AsnCount>, StatsError> {
        read::top_asns(self, window, limit).await
    }

    async fn top_networks(
        &self,
        window: Window,
        limit: usize,
    ) -> Result<Vec<NetworkCount>, StatsError> {
        read::top_networks(self, window, limit).await
    }

    async fn top_offenders(
        &self,
        window: Window,
        limit: usize,
    ) -> Result<Vec<Offender>, StatsError> {
        read::top_offenders(self, window, limit).await
    }

    async fn hosts(&self, window: Window) -> Result<Vec<HostCount>, StatsError> {
        read::hosts(self, window).await
    }

    async fn prune(&self, keep_from: Day) -> Result<u64, StatsError> {
        write::prune(self, keep_from).await
    }
}
