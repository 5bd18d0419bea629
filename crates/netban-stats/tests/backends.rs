//! What each backend does beyond the shared story: the Redis keys (prefix, expiry, what the
//! fleet sees), Redis outages and hangs, and the SQLite file (mode, schema, reopening).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use common::*;
use netban_core::config::Secret;
use netban_stats::redis::RedisBackend;
use netban_stats::sqlite::SqliteBackend;
use netban_stats::{BackendKind, OpenEnv, Stats, StatsBackend, StatsConfig};
use netban_testsupport::redis::{RedisOptions, RedisServer, runtime_trusting};

#[tokio::test]
async fn redis_day_keys_live_under_the_prefix_and_expire_after_the_retention() {
    let f = Fixture::redis();
    let server = f.redis.as_ref().unwrap();
    let stats = f.stats("web-01");
    stats
        .ingest(&[ban(1, noon(0), "81.2.69.160", "sshd")])
        .await
        .unwrap();
    let keys = server.keys("*");
    let d = day(0);
    let mut expected: Vec<String> = [
        "netban:stats:asorg".to_string(),
        format!("netban:stats:day:{d}:asns"),
        format!("netban:stats:day:{d}:counts"),
        format!("netban:stats:day:{d}:hosts"),
        format!("netban:stats:day:{d}:ninfo"),
        format!("netban:stats:day:{d}:networks"),
        format!("netban:stats:day:{d}:offenders"),
        format!("netban:stats:day:{d}:targets"),
        format!("netban:stats:day:{d}:tinfo"),
        "netban:stats:days".to_string(),
        "netban:stats:mark".to_string(),
        "netban:stats:roll:asns".to_string(),
        "netban:stats:roll:networks".to_string(),
        "netban:stats:roll:offenders".to_string(),
        "netban:stats:roll:through".to_string(),
        "netban:stats:seen".to_string(),
    ]
    .into_iter()
    .filter(|k| !k.ends_with(":asorg")) // no AS organisation for 81.2.69.160
    .collect();
    expected.sort();
    assert_eq!(keys, expected);
    let ttl: i64 = server
        .cli(&["TTL", &format!("netban:stats:day:{d}:counts")])
        .trim()
        .parse()
        .unwrap();
    // 400 days after the end of today (plus at most a day and a half for the zone slack).
    let days = ttl as f64 / 86_400.0;
    assert!((400.0..402.0).contains(&days), "TTL {ttl} s = {days} days");
    assert_eq!(server.cli(&["TTL", "netban:stats:mark"]).trim(), "-1");
    assert_eq!(
        server
            .cli(&["HGET", &format!("netban:stats:day:{d}:counts"), "c:GB"])
            .trim(),
        "1"
    );
}

#[tokio::test]
async fn redis_prefixes_keep_two_fleets_apart() {
    let server = RedisServer::start().unwrap();
    let url = Secret::new(server.url());
    let a: std::sync::Arc<dyn StatsBackend> =
        std::sync::Arc::new(RedisBackend::connect(&url, "fleet-a", 400).unwrap());
    let b: std::sync::Arc<dyn StatsBackend> =
        std::sync::Arc::new(RedisBackend::connect(&url, "fleet-b", 400).unwrap());
    let sa = Stats::new("web-01", jiff::tz::TimeZone::UTC, 400, test_geo(), a).unwrap();
    let sb = Stats::new("web-01", jiff::tz::TimeZone::UTC, 400, test_geo(), b).unwrap();
    sa.ingest(&[ban(1, noon(0), "81.2.69.160", "sshd")])
        .await
        .unwrap();
    assert_eq!(sa.report(1, now()).await.unwrap().total, 1);
    assert_eq!(sb.report(1, now()).await.unwrap().total, 0);
    assert!(server.keys("fleet-b:*").is_empty());
}

#[tokio::test]
async fn redis_outage_fails_the_batch_and_the_retry_counts_it_once() {
    let mut f = Fixture::redis();
    let stats = f.stats("web-01");
    stats
        .ingest(&[ban(1, noon(0), "81.2.69.160", "sshd")])
        .await
        .unwrap();
    let server = f.redis.as_mut().unwrap();
    server.stop();
    let batch = [ban(2, noon(0), "89.160.20.128", "sshd")];
    let err = stats.ingest(&batch).await.unwrap_err().to_string();
    assert!(
        err.starts_with("stats: Redis recording bans failed: ")
            && err
                .ends_with("check [stats] redis (or [cluster] redis) and that the server answers"),
        "{err}"
    );
    // It comes back empty (no persistence in the test server); the batch is retried.
    server.start_again().unwrap();
    let mut got = None;
    for _ in 0..50 {
        match stats.ingest(&batch).await {
            Ok(g) => {
                got = Some(g);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(got.expect("reconnected").recorded.applied, 1);
    stats.ingest(&batch).await.unwrap();
    assert_eq!(stats.report(1, now()).await.unwrap().total, 1);
}

#[tokio::test]
async fn a_hung_redis_times_out_instead_of_blocking_the_daemon() {
    let f = Fixture::redis();
    let stats = f.stats("web-01");
    stats.report(1, now()).await.unwrap(); // connected
    let server = f.redis.as_ref().unwrap();
    server.freeze();
    let started = Instant::now();
    let err = stats.report(1, now()).await.unwrap_err().to_string();
    let waited = started.elapsed();
    server.thaw();
    assert!(
        err.starts_with("stats: Redis reading daily counts failed"),
        "{err}"
    );
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(15),
        "waited {waited:?}"
    );
    assert_eq!(stats.report(1, now()).await.unwrap().total, 0);
}

#[tokio::test]
async fn redis_with_a_password_from_redis_file() {
    let server = RedisServer::start_with(RedisOptions {
        password: Some("s3cret-pass".into()),
        ..RedisOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("redis.url");
    std::fs::write(&url_file, format!("{}\n", server.url())).unwrap();
    let cfg = StatsConfig {
        backend: BackendKind::Redis,
        redis_file: Some(url_file),
        ..StatsConfig::default()
    };
    let env = OpenEnv {
        state_dir: dir.path(),
        host_id: "web-01",
        cluster_redis: None,
        cluster_prefix: Some("fleet"),
    };
    let stats = Stats::open(&cfg, env).unwrap();
    assert!(!format!("{stats:?}").contains("s3cret"));
    stats
        .ingest(&[ban(1, noon(0), "81.2.69.160", "sshd")])
        .await
        .unwrap();
    assert_eq!(stats.report(1, now()).await.unwrap().total, 1);
    assert_eq!(server.keys("fleet:stats:mark"), ["fleet:stats:mark"]);

    // A wrong password: the error says so and never shows it.
    let bad = RedisBackend::connect(
        &Secret::new(format!("redis://:wrong-pass@{}/0", server.addr())),
        "fleet",
        400,
    )
    .unwrap();
    let err = bad.ping().await.unwrap_err().to_string();
    assert!(!err.contains("wrong-pass"), "{err}");
    assert!(err.contains("PING failed"), "{err}");
}

#[tokio::test]
async fn sqlite_file_is_private_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StatsConfig::default();
    let env = OpenEnv {
        state_dir: dir.path(),
        host_id: "web-01",
        cluster_redis: None,
        cluster_prefix: None,
    };
    let stats = Stats::open(&cfg, env).unwrap();
    stats
        .ingest(&[ban(1, noon(0), "81.2.69.160", "sshd")])
        .await
        .unwrap();
    let path = dir.path().join("stats.db");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(stats);
    // The daemon restarts: counts and the mark are still there.
    let stats = Stats::open(&cfg, env).unwrap();
    stats
        .ingest(&[ban(1, noon(0), "81.2.69.160", "sshd")])
        .await
        .unwrap();
    assert_eq!(stats.report(1, now()).await.unwrap().total, 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1);
}

#[tokio::test]
async fn sqlite_never_opens_stats_db_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere.db");
    let path = dir.path().join("stats.db");
    // A dangling link: following it would create the file it points to.
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let err = SqliteBackend::open(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(!elsewhere.exists(), "the link's target was created");
    // A link to an existing database is refused too, and the database is left alone.
    SqliteBackend::open(&elsewhere).unwrap();
    let before = std::fs::read(&elsewhere).unwrap();
    assert!(SqliteBackend::open(&path).is_err());
    assert_eq!(std::fs::read(&elsewhere).unwrap(), before);
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.db");
    SqliteBackend::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 9).unwrap();
    drop(conn);
    let err = SqliteBackend::open(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "stats: {} has schema version 9, newer than this netban knows (1); upgrade netban or move the file away",
            path.display()
        )
    );
}

#[tokio::test]
async fn a_host_id_that_cannot_be_a_key_is_refused() {
    let f = Fixture::sqlite();
    let err = Stats::new(
        "web 01",
        jiff::tz::TimeZone::UTC,
        400,
        test_geo(),
        f.backend.clone(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("host id \"web 01\""), "{err}");
}

#[tokio::test]
async fn redis_rolling_top_lists_match_sqlite_as_the_window_moves_day_by_day() {
    // Bans over 70 days; then 30-day windows ending on later and later days (tomorrow, the
    // day after, ...) move the rolling lists one day at a time, and once by a jump.
    let redis = Fixture::redis();
    let sqlite = Fixture::sqlite();
    let ips = [
        "81.2.69.160",
        "89.160.20.128",
        "2001:218::1",
        "1.2.3.4",
        "1.128.0.1",
    ];
    let mut events = Vec::new();
    for i in 0..300i64 {
        let ago = (i * 7 % 70) as i32;
        let ip = ips[(i * i % 5) as usize];
        events.push(ban(i + 1, noon(ago) + i, ip, "sshd"));
    }
    for f in [&redis, &sqlite] {
        f.stats("web-01").ingest(&events).await.unwrap();
    }
    let today = netban_stats::Day::of(now(), &jiff::tz::TimeZone::UTC);
    for ahead in (1..=25).chain([70, 71]) {
        let last = today.minus(-ahead);
        let w = netban_stats::Window {
            first: last.minus(29),
            last,
        };
        let r = redis.backend.top_offenders(w, 10).await.unwrap();
        let s = sqlite.backend.top_offenders(w, 10).await.unwrap();
        assert_eq!(r, s, "window ending {last}");
        let r = redis.backend.top_networks(w, 10).await.unwrap();
        let s = sqlite.backend.top_networks(w, 10).await.unwrap();
        let key = |v: &[netban_stats::NetworkCount]| {
            let mut k: Vec<(String, u64)> = v.iter().map(|n| (n.network.clone(), n.bans)).collect();
            k.sort();
            k
        };
        assert_eq!(key(&r), key(&s), "window ending {last}");
        let r = redis.backend.report(w).await.unwrap();
        let s = sqlite.backend.report(w).await.unwrap();
        assert_eq!(r.by_asn, s.by_asn, "window ending {last}");
        assert_eq!(
            redis.backend.top_asns(w, 3).await.unwrap(),
            sqlite.backend.top_asns(w, 3).await.unwrap()
        );
    }
}

/// The fleet's statistics over `rediss://`: a TLS-only redis-server whose private CA is
/// trusted through `SSL_CERT_FILE` (docs/stats.md). Bans are counted and read back over TLS;
/// a server of a CA the host does not know is refused with what to do about it.
#[test]
fn redis_over_tls() {
    let server = RedisServer::start_with(RedisOptions {
        tls: true,
        password: Some("tls-pass".into()),
        ..RedisOptions::default()
    })
    .unwrap();
    let unknown = RedisServer::start_with(RedisOptions {
        tls: true,
        ..RedisOptions::default()
    })
    .unwrap();
    let rt = runtime_trusting(&server.ca_file());
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StatsConfig {
            backend: BackendKind::Redis,
            redis: Some(Secret::new(server.url())),
            ..StatsConfig::default()
        };
        let env = OpenEnv {
            state_dir: dir.path(),
            host_id: "web-01",
            cluster_redis: None,
            cluster_prefix: Some("fleet"),
        };
        let stats = Stats::open(&cfg, env).unwrap();
        stats
            .ingest(&[
                ban(1, noon(0), "81.2.69.160", "sshd"),
                ban(2, noon(0), "89.160.20.128", "sshd"),
            ])
            .await
            .unwrap();
        let r = stats.report(1, now()).await.unwrap();
        assert_eq!((r.total, r.targets), (2, 2));
        assert_eq!(server.keys("fleet:stats:mark"), ["fleet:stats:mark"]);

        let stranger = RedisBackend::connect(&Secret::new(unknown.url()), "fleet", 400).unwrap();
        let err = stranger.ping().await.unwrap_err().to_string();
        assert!(
            err.contains("UnknownIssuer") && err.contains("update-ca-certificates"),
            "{err}"
        );
    });
}
