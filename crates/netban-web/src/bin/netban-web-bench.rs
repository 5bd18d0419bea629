//! The web API benchmark (issue 9): 1,000,000 counted bans over 400 days in SQLite
//! statistics and 20,000 live targets on two sinks in a state database, served by the real
//! listener on loopback; every dashboard request is timed over HTTP (median of the runs,
//! after a warm-up; long windows with a new `limit` each run, so the minute's cache never
//! answers), and the process's memory is read before loading, after, and at its peak while
//! serving. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p netban-web --features bench --bin netban-web-bench -- \
//!     [--events N] [--days D] [--targets T] [--runs R] [--keep DIR]
//! ```
//!
//! `--keep DIR` leaves the state in `DIR/state` (the state database and `stats.db`, as a
//! daemon's `state_dir` holds them) for a real daemon to serve: point `state_dir` there,
//! with `host_id = "web-01"`, `[stats]`, and two exec sinks `fw` and `exafs`.
//!
//! The bans are deterministic (a fixed-seed generator) and skewed the way attack sources
//! are: 2,000 repeat offenders and 300,000 one-off addresses, 20 common countries and 160
//! rare ones, 6,000 ASes, 12 jails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use netban_core::config::{GuardConfig, ReconcileConfig, SinkCommon, SinkDef, SinkEnv};
use netban_core::exec::ExecConfig;
use netban_core::guard::Guard;
use netban_core::outbox::Cause;
use netban_core::owner::Mark;
use netban_core::reconcile::Engine;
use netban_core::store::{LeaseFacts, SinkRecord, Store};
use netban_core::{Lease, LeaseInfo, Origin, Target, Until};
use netban_stats::sqlite::SqliteBackend;
use netban_stats::stats::fallback_network;
use netban_stats::{Day, EnrichedEvent, Geo, Stats, StatsBackend};
use netban_web::{Backend, Limits};

struct Args {
    events: usize,
    days: u32,
    targets: usize,
    runs: usize,
    keep: Option<std::path::PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        events: 1_000_000,
        days: 400,
        targets: 20_000,
        runs: 7,
        keep: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--keep" {
            a.keep = Some(it.next().ok_or("--keep needs a directory")?.into());
            continue;
        }
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .parse::<usize>()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--events" => a.events = value()?,
            "--days" => a.days = value()? as u32,
            "--targets" => a.targets = value()?,
            "--runs" => a.runs = value()?.max(1),
            _ => {
                return Err(
                    "usage: netban-web-bench [--events N] [--days D] [--targets T] [--runs R] [--keep DIR]"
                        .into(),
                );
            }
        }
    }
    Ok(a)
}

/// splitmix64.
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
    let h = n.wrapping_mul(0x9e37_79b9);
    let s = if n.is_multiple_of(10) {
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

/// The bans, generated as they are recorded (the whole history is never in memory).
fn history(events: usize, days: u32, now: i64, host: &str) -> impl Iterator<Item = EnrichedEvent> {
    let mut rng = Rng(42);
    let span = i64::from(days) * 86_400;
    let start = now - span + 1;
    let host = host.to_string();
    (0..events).map(move |i| {
        let at = start + (span * i as i64) / events.max(1) as i64;
        let n = if rng.below(100) < 30 {
            rng.skewed(2_000)
        } else {
            2_000 + rng.below(300_000)
        };
        let target = address(n);
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
        let asn = (rng.below(100) >= 7).then(|| 1 + rng.skewed(6_000) as u32);
        EnrichedEvent {
            id: i as i64 + 1,
            at,
            day: Day::of(at, &TimeZone::UTC),
            host: host.clone(),
            jail: JAILS[rng.skewed(JAILS.len() as u64) as usize].to_string(),
            country,
            org: asn.map(|a| format!("Example Networks {a} Ltd")),
            asn,
            network: fallback_network(&target),
            target,
        }
    })
}

struct Served {
    store: Arc<Store>,
    engine: Arc<Engine>,
    stats: Arc<Stats>,
}

impl Backend for Served {
    fn health(&self) -> Result<String, String> {
        Ok("ok".into())
    }
    fn metrics(&self) -> String {
        String::new()
    }
    fn store(&self) -> Arc<Store> {
        self.store.clone()
    }
    fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }
    fn stats(&self) -> Option<Arc<Stats>> {
        Some(self.stats.clone())
    }
}

/// `VmRSS` and `VmHWM` of this process, in MB.
fn memory() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn sinks() -> Vec<SinkDef> {
    ["fw", "exafs"]
        .iter()
        .map(|n| SinkDef {
            common: SinkCommon {
                name: n.to_string(),
                kind: "exec".into(),
                jails: None,
                origins: None,
                min_origins: 1,
                exclusive: false,
                batch_window: None,
            },
            spec: Arc::new(ExecConfig {
                ban: Some(vec!["/bin/true".into()]),
                ..ExecConfig::default()
            }),
            fingerprint: 0,
        })
        .collect()
}

async fn run(a: Args) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let tmp = tempfile::tempdir().map_err(|x| e(&x))?;
    let base = a.keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let state_dir = base.join("state");
    netban_core::store::create_private_dir(&state_dir).map_err(|x| e(&x))?;
    let now = netban_core::clock::now();
    let (rss0, _) = memory();
    eprintln!("loading {} bans over {} days", a.events, a.days);
    let db = SqliteBackend::open(&state_dir.join("stats.db")).map_err(|x| e(&x))?;
    let t = Instant::now();
    let mut bans = history(a.events, a.days, now, "web-01");
    loop {
        let chunk: Vec<EnrichedEvent> = bans.by_ref().take(1000).collect();
        if chunk.is_empty() {
            break;
        }
        db.record(&chunk).await.map_err(|x| e(&x))?;
    }
    eprintln!("loaded in {:.1} s", t.elapsed().as_secs_f64());
    let geo = Arc::new(Geo::open(None, None));
    let stats =
        Arc::new(Stats::new("web-01", TimeZone::UTC, 3660, geo, Arc::new(db)).map_err(|x| e(&x))?);
    eprintln!("loading {} live targets on two sinks", a.targets);
    let store = Arc::new(Store::open(&state_dir).map_err(|x| e(&x))?);
    let mut rng = Rng(7);
    for i in 0..a.targets {
        let target = address(10_000_000 + i as u64);
        let jail = JAILS[rng.skewed(JAILS.len() as u64) as usize];
        let left = 600 + rng.below(86_400) as i64;
        let lease = Lease {
            target,
            jail: jail.into(),
            origin: Origin::Local,
            until: Until::At(now + left),
            bantime: left,
            since: now - rng.below(3600) as i64,
        };
        store
            .upsert_lease(&lease, &LeaseFacts::cause(Cause::Ban), now)
            .map_err(|x| e(&x))?;
        let info = LeaseInfo {
            jail: jail.into(),
            origin: "local".into(),
            bantime: left,
            until: Some(now + left),
        };
        for sink in ["fw", "exafs"] {
            // Nine in ten in place; the rest pending.
            if i % 10 != 0 || sink == "fw" {
                store
                    .record_held(&SinkRecord::held(sink, target, info.clone(), now))
                    .map_err(|x| e(&x))?;
            }
        }
    }
    let env = SinkEnv {
        state_dir: store.dir().to_path_buf(),
        host_id: "web-01".into(),
        mark: Mark::new("web-01", store.instance()),
    };
    let guard = Guard::new(
        &GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        },
        None,
    );
    let engine = Arc::new(Engine::new(
        store.clone(),
        guard,
        sinks(),
        env,
        ReconcileConfig::default(),
    ));
    let (rss_loaded, _) = memory();
    let router = netban_web::router(
        Arc::new(Served {
            store,
            engine,
            stats,
        }),
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|x| e(&x))?;
    let addr = listener.local_addr().map_err(|x| e(&x))?;
    tokio::spawn(netban_web::serve(
        listener,
        router,
        Limits::default(),
        std::future::pending(),
    ));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|x| e(&x))?;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let paths: Vec<(&str, String, bool)> = {
        let mut p = Vec::new();
        for days in [7u32, 30, 90, 365, 400] {
            let vary = days > 30;
            p.push(("stats/summary", format!("days={days}"), vary));
            p.push(("stats/report", format!("days={days}"), vary));
            for list in ["asns", "networks", "offenders"] {
                p.push((list, format!("days={days}"), vary));
            }
            p.push(("stats/hosts", format!("days={days}"), vary));
        }
        p.push(("active", String::new(), false));
        p.push(("active", "q=sshd&sort=until".into(), false));
        p.push(("active", "q=10.".into(), false));
        p.push(("active", "limit=5000".into(), false));
        p.push(("status", String::new(), false));
        p
    };
    let mut peak_body = 0usize;
    for (what, query, vary) in paths {
        let what = if ["asns", "networks", "offenders"].contains(&what) {
            format!("stats/{what}")
        } else {
            what.to_string()
        };
        let mut times = Vec::new();
        let mut bytes = 0;
        for run in 0..=a.runs {
            // Long windows: a new limit each run, so the minute's cache never answers.
            let limit = if vary {
                format!("&limit={}", 10 + run)
            } else {
                String::new()
            };
            let sep = if query.is_empty() && limit.is_empty() {
                ""
            } else {
                "?"
            };
            let url = format!("http://{addr}/api/v1/{what}{sep}{query}{limit}");
            let t = Instant::now();
            let resp = http.get(&url).send().await.map_err(|x| e(&x))?;
            let status = resp.status();
            let body = resp.bytes().await.map_err(|x| e(&x))?;
            let took = t.elapsed();
            if !status.is_success() {
                return Err(format!(
                    "{url}: {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            bytes = body.len();
            if run > 0 {
                times.push(took);
            }
        }
        peak_body = peak_body.max(bytes);
        times.sort();
        let median = times[times.len() / 2];
        rows.push((
            format!("`{what}{}{query}`", if query.is_empty() { "" } else { "?" }),
            format!("{:.1} ms", median.as_secs_f64() * 1000.0),
            format!("{:.1} KB | {:.0} MB", bytes as f64 / 1000.0, memory().0),
        ));
    }
    // A cached long window.
    let url = format!("http://{addr}/api/v1/stats/summary?days=400&limit=10");
    http.get(&url).send().await.map_err(|x| e(&x))?;
    let t = Instant::now();
    http.get(&url)
        .send()
        .await
        .map_err(|x| e(&x))?
        .bytes()
        .await
        .map_err(|x| e(&x))?;
    rows.push((
        "`stats/summary?days=400` (cached)".into(),
        format!("{:.1} ms", t.elapsed().as_secs_f64() * 1000.0),
        " | ".into(),
    ));
    let (rss_end, hwm) = memory();
    println!(
        "{} bans over {} days (SQLite), {} live targets on 2 sinks, median of {} runs over HTTP\n",
        a.events, a.days, a.targets, a.runs
    );
    println!("| request | latency | answer | RSS after |\n|---|---|---|---|");
    for (w, l, b) in rows {
        println!("| {w} | {l} | {b} |");
    }
    println!(
        "\n| memory | MB |\n|---|---|\n| at start | {rss0:.1} |\n| loaded (SQLite page cache, store) | {rss_loaded:.1} |\n| after serving | {rss_end:.1} |\n| peak (VmHWM) | {hwm:.1} |\n| largest answer | {:.1} KB |",
        peak_body as f64 / 1000.0
    );
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
            eprintln!("netban-web-bench: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(a)) {
        eprintln!("netban-web-bench: {e}");
        std::process::exit(1);
    }
}
