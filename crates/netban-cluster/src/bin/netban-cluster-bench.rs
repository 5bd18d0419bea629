//! The cluster benchmark (issue 8): a real redis-server (the test harness, no persistence),
//! one publishing host and N receiving hosts in this process, each with its own state
//! database. Prints a markdown table:
//!
//! - propagation latency from `ban` on the publisher until the lease is committed on each
//!   receiver (p50 / p99 / max over `--bans` bans, one at a time), for each N of `--receivers`;
//! - catch-up of a receiver that missed `--catchup` events, from the stream and (a new host)
//!   from the snapshot;
//! - Redis memory per 100,000 active leases (stream and snapshot);
//! - receiver CPU per 1000 events/s (this process's CPU while only the catching-up receiver
//!   runs), and Redis's own CPU for the same;
//! - Redis's CPU per event while N receivers are blocked in `XREAD` (the live fan-out).
//!
//! ```text
//! cargo run --release -p netban-cluster --features bench --bin netban-cluster-bench -- \
//!     [--receivers 10,50] [--bans 1000] [--catchup 100000]
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netban_cluster::{Cluster, ClusterConfig, HostKey, Setup};
use netban_core::config::{GuardConfig, Secret};
use netban_core::guard::Guard;
use netban_core::lease::Origin;
use netban_core::leases::{self, BanRequest};
use netban_core::outbox::Cause;
use netban_core::store::{LeaseFacts, Store};
use netban_core::{Target, Until, clock};
use netban_testsupport::redis::RedisServer;
use tokio::sync::watch;

struct Args {
    receivers: Vec<usize>,
    bans: usize,
    catchup: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        receivers: vec![10, 50],
        bans: 1000,
        catchup: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--receivers" => {
                a.receivers = value()?
                    .split(',')
                    .map(|n| n.parse().map_err(|e| format!("--receivers: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--bans" => a.bans = value()?.parse().map_err(|e| format!("--bans: {e}"))?,
            "--catchup" => a.catchup = value()?.parse().map_err(|e| format!("--catchup: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: netban-cluster-bench [--receivers 10,50] [--bans N] [--catchup N]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(a)
}

fn key_of(i: usize) -> HostKey {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    HostKey::from_seed(seed)
}

fn name(i: usize) -> String {
    format!("h{i}")
}

fn config(url: &str, hosts: usize) -> ClusterConfig {
    let mut c = ClusterConfig {
        redis: Some(Secret::new(url)),
        key_file: "/nonexistent".into(),
        ..ClusterConfig::default()
    };
    for i in 0..hosts {
        c.peers.insert(name(i), key_of(i).public().to_string());
    }
    c.limits.bans_per_minute = u32::MAX;
    c.limits.active_per_origin = u32::MAX;
    c
}

fn guard() -> Guard {
    Guard::new(
        &GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        },
        None,
    )
}

struct Node {
    cluster: Cluster,
    store: Arc<Store>,
    commits: Arc<Mutex<Vec<Instant>>>,
    _dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
}

fn stop_future(rx: watch::Receiver<bool>) -> impl std::future::Future<Output = ()> {
    let mut rx = rx;
    async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

fn node(url: &str, hosts: usize, i: usize, publish: bool, receive: bool) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(&dir.path().join("state")).expect("store"));
    let commits: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let c = commits.clone();
    let g = guard();
    let mut setup = Setup::new(
        config(url, hosts),
        &name(i),
        store.clone(),
        Arc::new(move || g.clone()),
        Arc::new(move || {
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Instant::now())
        }),
    );
    setup.key = Some(key_of(i));
    let cluster = Cluster::new(setup).expect("cluster");
    let (tx, rx) = watch::channel(false);
    if publish && let Some(p) = cluster.publisher() {
        tokio::spawn(p.run(stop_future(rx.clone())));
    }
    if receive && let Some(r) = cluster.receiver() {
        tokio::spawn(r.run(stop_future(rx)));
    }
    Node {
        cluster,
        store,
        commits,
        _dir: dir,
        stop: tx,
    }
}

fn ban(n: &Node, target: Target) {
    let now = clock::now();
    let req = BanRequest {
        target,
        jail: "sshd".into(),
        origin: Origin::Local,
        until: Until::At(now + 86_400),
        bantime: 86_400,
        since: now,
        facts: LeaseFacts::cause(Cause::Ban),
    };
    leases::ban(&n.store, &guard(), &req, now).expect("ban");
}

fn target(i: usize) -> Target {
    let i = i as u32 + 1;
    // 100.64.0.0/10 and up: outside every never-ban range.
    Target::from_parts(std::net::Ipv4Addr::from(0x6440_0000u32 + i).into(), 32).expect("target")
}

fn peer_count(n: &Node, origin: &str) -> usize {
    n.store
        .live_leases_by_origin(clock::now())
        .expect("count")
        .into_iter()
        .find(|(o, _)| o == origin)
        .map_or(0, |(_, c)| c as usize)
}

/// The sequence of `origin`'s newest event taken here.
fn mark_of(store: &Store, origin: &str) -> i64 {
    store
        .peer_states()
        .map(|v| {
            v.iter()
                .find(|p| p.origin == origin)
                .map_or(0, |p| p.mark.seq)
        })
        .unwrap_or(0)
}

/// Exits unless `store` holds exactly `n` live leases of `origin`.
fn check_count(store: &Store, origin: &str, n: usize) {
    let got = store
        .live_leases_by_origin(clock::now())
        .expect("count")
        .into_iter()
        .find(|(o, _)| o == origin)
        .map_or(0, |(_, c)| c as usize);
    if got != n {
        eprintln!("expected {n} leases of {origin}, found {got}");
        std::process::exit(1);
    }
}

async fn wait(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > limit {
            eprintln!("timed out after {limit:?}: {what}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we pass; no other memory is touched.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn redis_cpu(redis: &RedisServer) -> f64 {
    let info = redis.cli(&["INFO", "cpu"]);
    ["used_cpu_sys:", "used_cpu_user:"]
        .iter()
        .filter_map(|k| info.lines().find_map(|l| l.strip_prefix(k)))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

async fn latency(rows: &mut Vec<String>, receivers: usize, bans: usize) {
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let hosts = receivers + 1;
    let a = node(&url, hosts, 0, true, false);
    let rx: Vec<Node> = (1..hosts)
        .map(|i| node(&url, hosts, i, false, true))
        .collect();
    // Let every receiver connect and load its (empty) snapshots.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ban(&a, target(1_000_000));
    a.cluster.wake();
    wait("warm-up ban", Duration::from_secs(30), || {
        rx.iter().all(|r| peer_count(r, "h0") == 1)
    })
    .await;
    for r in &rx {
        r.commits.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
    let mut all = Vec::with_capacity(bans * receivers);
    let rcpu0 = redis_cpu(&redis);
    for b in 0..bans {
        let t0 = Instant::now();
        ban(&a, target(b));
        a.cluster.wake();
        wait(
            "a ban reaching every receiver",
            Duration::from_secs(30),
            || {
                rx.iter()
                    .all(|r| r.commits.lock().unwrap_or_else(|p| p.into_inner()).len() > b)
            },
        )
        .await;
        for r in &rx {
            let c = r.commits.lock().unwrap_or_else(|p| p.into_inner())[b];
            all.push(c.saturating_duration_since(t0));
        }
    }
    // Everything redis-server did meanwhile: the publisher's MULTI and, per receiver, the
    // XREAD it was blocked in answered and the next one taken.
    let rcpu = redis_cpu(&redis) - rcpu0;
    all.sort();
    rows.push(format!(
        "| propagation, {receivers} receivers ({bans} bans, one at a time) | p50 {} · p99 {} · max {} |",
        ms(pct(&all, 0.5)),
        ms(pct(&all, 0.99)),
        ms(*all.last().unwrap_or(&Duration::ZERO))
    ));
    rows.push(format!(
        "| redis-server CPU, live, {receivers} blocked readers | {:.1} µs per event, {:.1} µs per event per reader |",
        rcpu / bans as f64 * 1e6,
        rcpu / (bans * receivers) as f64 * 1e6
    ));
    let _ = a.stop.send(true);
    for r in &rx {
        let _ = r.stop.send(true);
    }
}

async fn catchup(rows: &mut Vec<String>, events: usize) {
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    let base_mem = redis.used_memory().unwrap_or(0);
    let a = node(&url, 3, 0, true, false);
    // b reads one event, then is away while `events` more are published.
    let b = node(&url, 3, 1, false, true);
    ban(&a, target(events + 10));
    a.cluster.wake();
    wait("b's first event", Duration::from_secs(30), || {
        peer_count(&b, "h0") == 1
    })
    .await;
    let _ = b.stop.send(true);
    drop(b.cluster);
    let b_store = b.store.clone();
    let b_dir = b._dir;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    for i in 0..events {
        ban(&a, target(i));
        if i % 1000 == 0 {
            a.cluster.wake();
        }
    }
    let banned = t.elapsed();
    a.cluster.wake();
    wait("a published everything", Duration::from_secs(600), || {
        a.cluster
            .status()
            .map(|s| s.bus.map_or(1, |b| b.publish_lag))
            .unwrap_or(1)
            == 0
    })
    .await;
    let published = t.elapsed();
    let mem = redis.used_memory().unwrap_or(0).saturating_sub(base_mem);
    let usage = |key: &str| -> u64 {
        redis
            .cli(&["MEMORY", "USAGE", key, "SAMPLES", "0"])
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let stream = usage("netban:bus:stream");
    let snap = usage("netban:bus:snap:h0");
    let per = |bytes: u64| bytes as f64 * 100_000.0 / (events as f64 + 1.0) / 1_048_576.0;
    rows.push(format!(
        "| publisher: {events} bans recorded, then all published | {:.1} s recorded, {:.1} s until the outbox was empty ({:.0} events/s) |",
        banned.as_secs_f64(),
        published.as_secs_f64(),
        events as f64 / published.as_secs_f64()
    ));
    rows.push(format!(
        "| Redis memory per 100,000 active leases | {:.1} MiB total: stream {:.1} MiB, snapshot {:.1} MiB (used_memory {:.1} MiB) |",
        per(stream + snap),
        per(stream),
        per(snap),
        per(mem)
    ));
    // b comes back with its cursor: catches up from the stream.
    let mut setup = Setup::new(
        config(&url, 3),
        &name(1),
        b_store.clone(),
        {
            let g = guard();
            Arc::new(move || g.clone())
        },
        Arc::new(|| {}),
    );
    setup.key = Some(key_of(1));
    let b2 = Cluster::new(setup).expect("cluster");
    let (tx, rx) = watch::channel(false);
    let (cpu0, rcpu0) = (cpu_secs(), redis_cpu(&redis));
    if let Some(r) = b2.receiver() {
        tokio::spawn(r.run(stop_future(rx)));
    }
    let n = events + 1;
    // Done when b's mark of h0 is h0's newest event: the mark commits in the transaction of
    // the leases it covers. (Counting 100,000 leases every 2 ms instead would hold b's store
    // most of the time and measure the counting.)
    let last = a.store.last_event_id().expect("a's last event");
    let took = wait(
        "b caught up from the stream",
        Duration::from_secs(600),
        || mark_of(&b_store, "h0") >= last,
    )
    .await;
    let (cpu, rcpu) = (cpu_secs() - cpu0, redis_cpu(&redis) - rcpu0);
    check_count(&b_store, "h0", n);
    rows.push(format!(
        "| catch-up from the stream: a receiver that missed {events} events | {:.1} s ({:.0} events/s) |",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    ));
    rows.push(format!(
        "| receiver CPU per 1000 events/s (measured during that catch-up) | {:.2} of a core in netban, {:.3} of a core in redis-server |",
        cpu / events as f64 * 1000.0,
        rcpu / events as f64 * 1000.0
    ));
    let _ = tx.send(true);
    drop(b_dir);
    // A new host: from the snapshot.
    let c = node(&url, 3, 2, false, true);
    // Done when c saved its cursor: after the last chunk of the snapshot.
    let took = wait("c loaded the snapshot", Duration::from_secs(600), || {
        c.store
            .bus_cursor("receiver")
            .map(|cur| cur.is_some())
            .unwrap_or(false)
    })
    .await;
    check_count(&c.store, "h0", n);
    rows.push(format!(
        "| catch-up via snapshot: a new host loads {n} active leases | {:.1} s ({:.0} leases/s) |",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    ));
    let _ = a.stop.send(true);
    let _ = c.stop.send(true);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut rows = Vec::new();
    for &n in &a.receivers {
        eprintln!("propagation with {n} receivers ...");
        latency(&mut rows, n, a.bans).await;
    }
    if a.catchup > 0 {
        eprintln!("catch-up of {} events ...", a.catchup);
        catchup(&mut rows, a.catchup).await;
    }
    println!("| netban cluster benchmark (redis-server 7, loopback, 2 cores) | result |");
    println!("|---|---|");
    for r in rows {
        println!("{r}");
    }
}
