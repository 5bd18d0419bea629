//! The statistics benchmark (issue 9): loads synthetic enriched bans (default 1,000,000 over
//! 400 days, ten hosts) into SQLite and into a real redis-server (started by the test
//! harness, no persistence), then prints a markdown table: ingest rate, storage per million
//! events, the median latency of every dashboard query and of the 30-day report, and the cost
//! of enrichment per event with and without the cache.
//!
//! ```text
//! cargo run --release -p netban-stats --features bench --bin netban-stats-bench -- \
//!     [--events N] [--days D] [--runs R] [--batch B] [--only sqlite|redis] [--keep DIR]
//!     [--redis-url URL]   # an empty server of your own instead of a private one
//! ```
//!
//! The data is deterministic (a fixed-seed generator): a skewed mix of 2,000 repeat offenders
//! and 300,000 one-off addresses (10 % IPv6), 180 countries, 6,000 ASes and 12 jails, all
//! skewed the way attack sources are. Enrichment is measured on MaxMind's small test databases
//! (`testdata/geoip`), whose trees are shallower than GeoLite2's: the uncached figure is a
//! lower bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use netban_core::Target;
use netban_core::config::Secret;
use netban_stats::redis::RedisBackend;
use netban_stats::sqlite::SqliteBackend;
use netban_stats::stats::fallback_network;
use netban_stats::{Day, EnrichedEvent, Geo, StatsBackend, Window};
use netban_testsupport::redis::RedisServer;

struct Args {
    events: usize,
    days: u32,
    runs: usize,
    batch: usize,
    only: Option<String>,
    keep: Option<std::path::PathBuf>,
    redis_url: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        events: 1_000_000,
        days: 400,
        runs: 7,
        batch: 1000,
        only: None,
        keep: None,
        redis_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => a.events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--days" => a.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--only" => a.only = Some(value()?),
            "--keep" => a.keep = Some(value()?.into()),
            "--redis-url" => a.redis_url = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: netban-stats-bench [--events N] [--days D] [--runs R] \
                            [--batch B] [--only sqlite|redis] [--keep DIR] [--redis-url URL]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    a.batch = a.batch.max(1);
    a.runs = a.runs.max(1);
    a.days = a.days.max(1);
    Ok(a)
}

/// splitmix64: deterministic and fast; statistical quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Skewed towards 0: the minimum of two uniforms, squared.
    fn skewed(&mut self, n: u64) -> u64 {
        let x = self.below(n).min(self.below(n));
        x * x / n.max(1)
    }
}

const COUNTRIES: &[&str] = &[
    "CN", "US", "RU", "IN", "BR", "VN", "DE", "KR", "NL", "GB", "FR", "ID", "SG", "TW", "HK", "JP",
    "UA", "IR", "TR", "TH",
];
const JAILS: &[&str] = &[
    "sshd",
    "postfix",
    "dovecot",
    "nginx-http-auth",
    "recidive",
    "apache-auth",
    "exim",
    "pure-ftpd",
    "asterisk",
    "named-refused",
    "nginx-botsearch",
    "wordpress",
];

fn address(n: u64) -> Target {
    let v6 = n.is_multiple_of(10);
    let h = n.wrapping_mul(0x9e37_79b9);
    let s = if v6 {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            (h >> 16) & 0xffff,
            h & 0xffff,
            n & 0xffff
        )
    } else {
        format!(
            "{}.{}.{}.{}",
            1 + (h >> 24) % 222,
            (h >> 16) & 0xff,
            (h >> 8) & 0xff,
            h & 0xff
        )
    };
    Target::parse(&s).unwrap_or_else(|_| Target::parse("192.0.2.1").expect("literal"))
}

/// The synthetic history: `events` bans spread evenly over `days` days ending now.
fn history(events: usize, days: u32, now: i64) -> Vec<EnrichedEvent> {
    let mut rng = Rng(42);
    let span = i64::from(days) * 86_400;
    let start = now - span + 1;
    let mut ids = [0i64; 10];
    (0..events)
        .map(|i| {
            let at = start + (span * i as i64) / events.max(1) as i64;
            let offender = if rng.below(100) < 30 {
                rng.skewed(2_000)
            } else {
                2_000 + rng.below(300_000)
            };
            let target = address(offender);
            let country = if rng.below(100) < 80 {
                COUNTRIES[rng.skewed(COUNTRIES.len() as u64) as usize].to_string()
            } else {
                let c = rng.below(160) as u8;
                format!(
                    "{}{}",
                    (b'A' + c / 26 % 26) as char,
                    (b'A' + c % 26) as char
                )
            };
            let asn = if rng.below(100) < 7 {
                None
            } else {
                Some(1 + rng.skewed(6_000) as u32)
            };
            let host = i % 10;
            ids[host] += 1;
            EnrichedEvent {
                id: ids[host],
                at,
                day: Day::of(at, &TimeZone::UTC),
                host: format!("web-{host:02}"),
                jail: JAILS[rng.skewed(JAILS.len() as u64) as usize].to_string(),
                country,
                org: asn.map(|a| format!("Example Networks {a} Ltd")),
                asn,
                network: fallback_network(&target),
                target,
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn timed<T, F, Fut>(runs: usize, mut f: F) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, netban_stats::StatsError>>,
{
    let mut times = Vec::with_capacity(runs);
    f().await.map_err(|e| e.to_string())?; // warm-up
    for _ in 0..runs {
        let t = Instant::now();
        f().await.map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    Ok(median(times))
}

/// One backend's rows: (what, value).
async fn bench_backend(
    name: &str,
    backend: Arc<dyn StatsBackend>,
    events: &[EnrichedEvent],
    a: &Args,
    now: i64,
    size: impl AsyncFnOnce() -> Result<u64, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut rows = Vec::new();
    let t = Instant::now();
    for chunk in events.chunks(a.batch) {
        backend.record(chunk).await.map_err(|e| e.to_string())?;
    }
    let took = t.elapsed();
    rows.push((
        format!(
            "{name}: ingest ({} events, batches of {})",
            events.len(),
            a.batch
        ),
        format!(
            "{:.0} events/s ({:.1} s)",
            events.len() as f64 / took.as_secs_f64(),
            took.as_secs_f64()
        ),
    ));
    let bytes = size().await?;
    rows.push((
        format!("{name}: storage per million events"),
        format!(
            "{:.1} MB",
            bytes as f64 / 1e6 * 1_000_000.0 / events.len().max(1) as f64
        ),
    ));
    for days in [30u32, a.days.min(400)] {
        let w = Window::last(days, now, &TimeZone::UTC);
        let b = &backend;
        rows.push((
            format!("{name}: report, {days} days (netban stats --days {days})"),
            ms(timed(a.runs, || b.report(w)).await?),
        ));
        rows.push((
            format!("{name}: top 10 ASNs, {days} days"),
            ms(timed(a.runs, || b.top_asns(w, 10)).await?),
        ));
        rows.push((
            format!("{name}: top 10 networks, {days} days"),
            ms(timed(a.runs, || b.top_networks(w, 10)).await?),
        ));
        rows.push((
            format!("{name}: top 10 repeat offenders, {days} days"),
            ms(timed(a.runs, || b.top_offenders(w, 10)).await?),
        ));
        rows.push((
            format!("{name}: per-host breakdown, {days} days"),
            ms(timed(a.runs, || b.hosts(w)).await?),
        ));
    }
    Ok(rows)
}

fn enrichment(events: &[EnrichedEvent]) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/geoip");
    let geo = Geo::open(
        Some(dir.join("GeoLite2-Country-Test.mmdb")),
        Some(dir.join("GeoLite2-ASN-Test.mmdb")),
    );
    // The test databases cover few of the synthetic addresses: mix in covered ones so both
    // paths (data and no data) are measured.
    let known: Vec<Target> = ["81.2.69.160", "89.160.20.128", "2001:218::1", "1.128.0.1"]
        .iter()
        .filter_map(|s| Target::parse(s).ok())
        .collect();
    let targets: Vec<Target> = events
        .iter()
        .take(200_000)
        .enumerate()
        .map(|(i, e)| {
            if i % 4 == 0 {
                known[i / 4 % known.len()]
            } else {
                e.target
            }
        })
        .collect();
    let per = |d: Duration| format!("{:.0} ns/event", d.as_nanos() as f64 / targets.len() as f64);
    let t = Instant::now();
    for x in &targets {
        std::hint::black_box(geo.lookup_uncached(x));
    }
    let uncached = t.elapsed();
    let t = Instant::now();
    for x in &targets {
        std::hint::black_box(geo.lookup(x));
    }
    let cached = t.elapsed();
    let c = geo.counters();
    vec![
        (
            "enrichment without the cache (test mmdb files)".into(),
            per(uncached),
        ),
        (
            format!(
                "enrichment with the cache ({:.0} % hits)",
                c.cache_hits as f64 * 100.0 / targets.len() as f64
            ),
            per(cached),
        ),
    ]
}

async fn run(a: Args) -> Result<(), String> {
    let now = jiff::Timestamp::now().as_second();
    eprintln!("generating {} events over {} days", a.events, a.days);
    let events = history(a.events, a.days, now);
    let mut rows = Vec::new();
    let want = |b: &str| a.only.as_deref().is_none_or(|o| o == b);
    if want("sqlite") {
        eprintln!("sqlite ...");
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // --keep DIR: leave stats.db there for a look with sqlite3.
        let at = a.keep.clone().unwrap_or_else(|| dir.path().to_path_buf());
        let db = SqliteBackend::open(&at.join("stats.db")).map_err(|e| e.to_string())?;
        let size_db = db.clone();
        rows.extend(
            bench_backend("sqlite", Arc::new(db), &events, &a, now, async move || {
                size_db.size().await.map_err(|e| e.to_string())
            })
            .await?,
        );
    }
    if want("redis") {
        eprintln!("redis ...");
        let server = match &a.redis_url {
            Some(_) => None,
            None => Some(RedisServer::start().map_err(|e| e.to_string())?),
        };
        let url = a
            .redis_url
            .clone()
            .or_else(|| server.as_ref().map(RedisServer::url))
            .unwrap_or_default();
        let backend =
            RedisBackend::connect(&Secret::new(url), "bench", 400).map_err(|e| e.to_string())?;
        let before = backend.used_memory().await.map_err(|e| e.to_string())?;
        let b = backend.clone();
        rows.extend(
            bench_backend(
                "redis",
                Arc::new(backend),
                &events,
                &a,
                now,
                async move || {
                    Ok(b.used_memory()
                        .await
                        .map_err(|e| e.to_string())?
                        .saturating_sub(before))
                },
            )
            .await?,
        );
        drop(server);
    }
    rows.extend(enrichment(&events));
    println!("| measure | result |\n|---|---|");
    for (what, value) in rows {
        println!("| {what} | {value} |");
    }
    Ok(())
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netban-stats-bench: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(a)) {
        eprintln!("netban-stats-bench: {e}");
        std::process::exit(1);
    }
}
