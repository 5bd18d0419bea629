//! The Redis bus against a real redis-server: bans travel, hosts catch up, resync from the
//! snapshot, survive a Redis that lost everything, and nothing is lost.

mod common;

use std::time::Duration;

use common::*;
use netban_testsupport::redis::{RedisOptions, RedisServer, runtime_trusting};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_host_becomes_a_peer_lease_on_the_others_and_so_does_the_unban() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b", "c"]);
    let mut hosts: Vec<Host> = ["a", "b", "c"]
        .iter()
        .map(|h| Host::new(h, cfg.clone()))
        .collect();
    for h in &mut hosts {
        h.start();
    }
    for h in &hosts {
        h.settle().await;
    }
    hosts[0].ban("192.0.2.1", "sshd");
    hosts[0].ban("2001:db8::7", "postfix");
    let want = vec![
        "192.0.2.1/32 sshd".to_string(),
        "2001:db8::7/128 postfix".to_string(),
    ];
    for h in &hosts[1..] {
        wait_until(WAIT, &format!("{} holds a's bans", h.name), || {
            h.leases_from("a") == want
        })
        .await;
        assert!(h.local().is_empty(), "a peer's ban is not a local lease");
    }
    assert!(
        hosts[0].leases_from("b").is_empty(),
        "peer leases are never republished"
    );
    hosts[0].unban("192.0.2.1", "sshd");
    for h in &hosts[1..] {
        // (The counts are saved just after the leases.)
        wait_until(WAIT, &format!("{} ends the unbanned lease", h.name), || {
            h.leases_from("a") == want[1..] && h.count("a", "accepted") == 3
        })
        .await;
    }
    // b's and c's counts say what happened; nothing was refused.
    assert_eq!(hosts[1].count("a", "accepted"), 3);
    let st = hosts[1].cluster.status().unwrap();
    let a = st.peers.iter().find(|p| p.host == "a").unwrap();
    assert_eq!((a.counts.accepted, a.refused, a.leases), (3, 0, 1));
    assert!(st.bus.as_ref().unwrap().receiver.connected);
    // The snapshot in Redis holds a's live leases only.
    let snap = redis.cli(&["HKEYS", "netban:bus:snap:a"]);
    assert_eq!(snap.trim(), "2001:db8::7/128 postfix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_during_100_bans_catches_up_after_restart() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b"]);
    let (mut a, mut b) = (Host::new("a", cfg.clone()), Host::new("b", cfg.clone()));
    a.start();
    b.start();
    a.settle().await;
    b.settle().await;
    a.ban("192.0.2.1", "sshd");
    wait_until(WAIT, "b holds the first ban", || {
        b.leases_from("a").len() == 1
    })
    .await;
    b.kill();
    for i in 0..100 {
        a.ban(&format!("198.51.100.{i}"), "sshd");
    }
    a.unban("192.0.2.1", "sshd");
    wait_until(WAIT, "a published everything", || {
        a.cluster.status().unwrap().bus.unwrap().publish_lag == 0
    })
    .await;
    b.start();
    wait_until(WAIT, "b caught up", || {
        b.leases_from("a") == a.local() && b.count("a", "accepted") >= 102
    })
    .await;
    assert_eq!(b.leases_from("a").len(), 100);
    assert_eq!(
        b.count("a", "accepted"),
        102,
        "every event once, none twice"
    );
    assert_eq!(b.count("a", "replay"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_behind_the_trimmed_stream_resyncs_from_the_snapshot_to_the_exact_set() {
    init_logs();
    // Small stream nodes, so that MINID ~ trims a test-sized stream.
    let redis = RedisServer::start_with(RedisOptions {
        extra_config: vec!["stream-node-max-entries 10".into()],
        ..RedisOptions::default()
    })
    .unwrap();
    let mut cfg = config(&redis.url(), &["a", "b"]);
    cfg.retention = 3;
    let (mut a, mut b) = (Host::new("a", cfg.clone()), Host::new("b", cfg.clone()));
    a.start();
    b.start();
    for i in 0..10 {
        a.ban(&format!("192.0.2.{i}"), "sshd");
    }
    wait_until(WAIT, "b holds the first bans", || {
        b.leases_from("a").len() == 10
    })
    .await;
    b.kill();
    for i in 0..30 {
        a.ban(&format!("198.51.100.{i}"), "sshd");
    }
    for i in 0..5 {
        a.unban(&format!("192.0.2.{i}"), "sshd");
    }
    wait_until(WAIT, "a published everything", || {
        a.cluster.status().unwrap().bus.unwrap().publish_lag == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for i in 0..12 {
        a.ban(&format!("203.0.113.{i}"), "sshd");
    }
    wait_until(WAIT, "the stream was trimmed", || {
        let info = redis.cli(&["XINFO", "STREAM", "netban:bus:stream"]);
        let field = |f: &str| {
            info.lines()
                .skip_while(|l| *l != f)
                .nth(1)
                .unwrap_or("")
                .to_string()
        };
        field("length") != field("entries-added")
    })
    .await;
    b.start();
    wait_until(WAIT, "b resynced to exactly a's live set", || {
        let st = b.cluster.status().unwrap();
        b.leases_from("a") == a.local()
            && st
                .peers
                .iter()
                .any(|p| p.host == "a" && p.resynced.is_some())
    })
    .await;
    assert_eq!(b.leases_from("a").len(), 47);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_host_joining_gets_the_whole_active_set() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b", "d"]);
    let (mut a, mut b) = (Host::new("a", cfg.clone()), Host::new("b", cfg.clone()));
    a.start();
    b.start();
    for i in 0..50 {
        a.ban(&format!("198.51.100.{i}"), "sshd");
    }
    b.ban("203.0.113.9", "nginx");
    for i in 0..10 {
        a.unban(&format!("198.51.100.{i}"), "sshd");
    }
    wait_until(WAIT, "a and b published", || {
        a.cluster.status().unwrap().bus.unwrap().publish_lag == 0
            && b.cluster.status().unwrap().bus.unwrap().publish_lag == 0
    })
    .await;
    let mut d = Host::new("d", cfg.clone());
    d.start();
    wait_until(WAIT, "d holds every active ban", || {
        d.leases_from("a") == a.local() && d.leases_from("b") == b.local()
    })
    .await;
    assert_eq!(d.leases_from("a").len(), 40);
    // And it follows the stream from there.
    a.ban("192.0.2.200", "sshd");
    wait_until(WAIT, "d gets the next ban", || {
        d.leases_from("a").len() == 41
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_during_bans_loses_nothing() {
    init_logs();
    let mut redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b"]);
    let (mut a, mut b) = (Host::new("a", cfg.clone()), Host::new("b", cfg.clone()));
    a.start();
    b.start();
    for i in 0..5 {
        a.ban(&format!("192.0.2.{i}"), "sshd");
    }
    wait_until(WAIT, "b holds the first bans", || {
        b.leases_from("a").len() == 5
    })
    .await;
    redis.stop();
    let started = std::time::Instant::now();
    for i in 0..20 {
        a.ban(&format!("198.51.100.{i}"), "sshd");
    }
    a.unban("192.0.2.0", "sshd");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a ban never waits for redis"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        a.cluster.status().unwrap().bus.unwrap().publish_lag > 0,
        "the outbox holds them"
    );
    // It comes back empty (no persistence): a new stream epoch.
    redis.start_again().unwrap();
    wait_until(
        Duration::from_secs(40),
        "b holds exactly a's live set",
        || b.leases_from("a") == a.local(),
    )
    .await;
    assert_eq!(b.leases_from("a").len(), 24);
    // And the snapshot was rebuilt for hosts that join later.
    wait_until(WAIT, "a's snapshot is back", || {
        redis.cli(&["HLEN", "netban:bus:snap:a"]).trim() == "24"
    })
    .await;
}

/// `rediss://`, as DESIGN.md's example config has it, against a redis-server that speaks TLS
/// only. The server's CA is trusted the way an operator trusts a private CA without the
/// system store: `SSL_CERT_FILE` (docs/cluster.md, TLS to Redis). A host on a server whose CA
/// it does not know stays disconnected and says why; the hosts that trust it carry bans.
#[test]
fn the_bus_over_tls_carries_bans_and_refuses_a_server_of_an_unknown_ca() {
    init_logs();
    let known = RedisServer::start_with(RedisOptions {
        tls: true,
        ..RedisOptions::default()
    })
    .unwrap();
    let unknown = RedisServer::start_with(RedisOptions {
        tls: true,
        ..RedisOptions::default()
    })
    .unwrap();
    assert!(known.url().starts_with("rediss://"), "{}", known.url());
    let rt = runtime_trusting(&known.ca_file());
    rt.block_on(async {
        let mut stranger = Host::new("x", config(&unknown.url(), &["x"]));
        stranger.start();
        wait_until(WAIT, "x says why it cannot reach the bus", || {
            let bus = stranger.cluster.status().unwrap().bus.unwrap();
            !bus.publisher.connected
                && bus.publisher.last_error.is_some_and(|e| {
                    e.contains("invalid peer certificate: UnknownIssuer")
                        && e.contains("update-ca-certificates")
                })
        })
        .await;
        stranger.kill();

        let cfg = config(&known.url(), &["a", "b"]);
        let mut hosts: Vec<Host> = ["a", "b"]
            .iter()
            .map(|h| Host::new(h, cfg.clone()))
            .collect();
        for h in &mut hosts {
            h.start();
        }
        for h in &hosts {
            h.settle().await;
        }
        hosts[0].ban("192.0.2.1", "sshd");
        wait_until(WAIT, "b holds a's ban, over TLS", || {
            hosts[1].leases_from("a") == ["192.0.2.1/32 sshd"]
        })
        .await;
    });
}
