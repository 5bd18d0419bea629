//! What a receiver refuses, against a real redis-server: forged, replayed and stale events,
//! a peer over its caps, bans the guard refuses, revokes from peers not allowed to; and the
//! hub lock changing hands.

mod common;

use std::time::Duration;

use common::*;
use netban_cluster::{HostKey, revoke_everywhere};
use netban_core::clock;
use netban_testsupport::redis::RedisServer;

const WAIT: Duration = Duration::from_secs(15);

fn xadd(redis: &RedisServer, wire: &str) {
    redis.cli(&["XADD", "netban:bus:stream", "*", "e", wire]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_events_are_refused_and_counted_by_cause_and_make_no_lease() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b"]);
    let (mut a, mut b) = (Host::new("a", cfg.clone()), Host::new("b", cfg.clone()));
    a.start();
    b.start();
    a.settle().await;
    b.settle().await;
    a.ban("192.0.2.1", "sshd");
    wait_until(WAIT, "b holds a's ban", || b.leases_from("a").len() == 1).await;
    let now = clock::now();
    let genuine = redis.cli(&["XRANGE", "netban:bus:stream", "-", "+"]);
    let genuine = genuine
        .lines()
        .find(|l| l.starts_with("netban1 "))
        .unwrap()
        .to_string();

    // Unsigned.
    xadd(&redis, &event("a", 10_000, now, "203.0.113.1").body());
    // Unknown key: a host nobody trusts.
    xadd(
        &redis,
        &event("evil", 1, now, "203.0.113.2").sign(&HostKey::from_seed([9; 32])),
    );
    // Wrong key: claims to be a, signed by another.
    xadd(
        &redis,
        &event("a", 10_001, now, "203.0.113.3").sign(&HostKey::from_seed([9; 32])),
    );
    // Tampered: a's genuine event with another target.
    xadd(
        &redis,
        &genuine.replacen("192.0.2.1/32", "203.0.113.4/32", 1),
    );
    // Replayed: a's genuine event again.
    xadd(&redis, &genuine);
    // Not an event at all.
    xadd(&redis, "netban1 a 1 2 3 ; rm -rf /");
    // Too old: genuine key, fresh sequence, older than the retention.
    let old = now - cfg.retention as i64 - 100;
    let mut stale = event("a", 1, old, "203.0.113.5");
    stale.mark.epoch = i64::MAX / 2;
    xadd(&redis, &stale.sign(&key_of("a")));

    wait_until(WAIT, "b counted every forgery", || {
        b.count("a", "bad_signature") == 3
            && b.count("(untrusted)", "unknown_key") == 1
            && b.count("a", "replay") == 1
            && b.count("(untrusted)", "malformed") == 1
            && b.count("a", "too_old") == 1
    })
    .await;
    assert_eq!(b.leases_from("a"), vec!["192.0.2.1/32 sshd".to_string()]);
    assert!(b.leases_from("evil").is_empty());
    let st = b.cluster.status().unwrap();
    let pa = st.peers.iter().find(|p| p.host == "a").unwrap();
    // (b may have taken a's ban from a's snapshot rather than the stream: not an event.)
    assert!(pa.counts.accepted <= 1);
    assert_eq!(pa.refused, 5);
    let untrusted = st.peers.iter().find(|p| p.host == "(untrusted)").unwrap();
    assert!(!untrusted.trusted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_bans_per_minute_is_throttled_and_over_active_per_origin_capped() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b", "c"]);
    let mut capped = cfg.clone();
    capped.limits.bans_per_minute = 20;
    capped.limits.active_per_origin = 15;
    let mut a = Host::new("a", cfg.clone());
    let mut b = Host::new("b", {
        let mut c = cfg.clone();
        c.limits.bans_per_minute = 20;
        c
    });
    let mut c = Host::new("c", capped);
    a.start();
    b.start();
    c.start();
    for h in [&a, &b, &c] {
        h.settle().await;
    }
    for i in 0..50 {
        a.ban(&format!("198.51.100.{i}"), "sshd");
    }
    wait_until(WAIT, "b and c took or refused all 50", || {
        b.count("a", "accepted") + b.count("a", "rate") == 50
            && c.count("a", "accepted") + c.count("a", "rate") + c.count("a", "cap") == 50
    })
    .await;
    // The minute may roll over during the burst: at most two minutes' worth.
    let held = b.leases_from("a").len();
    assert!((20..=40).contains(&held), "b holds {held}");
    assert!(b.count("a", "rate") >= 10);
    assert_eq!(c.leases_from("a").len(), 15, "active_per_origin");
    assert!(c.count("a", "cap") >= 5);
    // Ends are never capped.
    a.unban("198.51.100.0", "sshd");
    wait_until(WAIT, "c ends a's lease", || c.leases_from("a").len() == 14).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_ban_of_an_allowlisted_or_never_ban_range_is_refused() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let cfg = config(&redis.url(), &["a", "b"]);
    let mut a = Host::new("a", cfg.clone());
    let mut b = Host::with_guard("b", cfg.clone(), guard(&["198.51.100.0/24"]));
    a.start();
    b.start();
    a.ban("198.51.100.7", "sshd");
    a.ban("192.0.2.9", "sshd");
    // (A ban may be refused twice: once from a's snapshot, once from the stream.)
    wait_until(WAIT, "b took a's bans", || {
        b.count("a", "guard") >= 1 && b.leases_from("a").len() == 1
    })
    .await;
    // a's own guard never lets loopback out; a compromised a could sign it anyway.
    let mut ev = event("a", 1_000_000, clock::now(), "127.0.0.1");
    ev.mark.epoch = i64::MAX / 2;
    xadd(&redis, &ev.sign(&key_of("a")));
    wait_until(WAIT, "b refused loopback by the guard", || {
        let r = b.store.refusals(Some(&t("127.0.0.1")), 10).unwrap();
        r.iter().any(|r| r.origin == "a") && b.count("a", "guard") >= 2
    })
    .await;
    assert_eq!(b.leases_from("a"), vec!["192.0.2.9/32 sshd".to_string()]);
    let refused = b.store.refusals(None, 10).unwrap();
    assert!(
        refused
            .iter()
            .any(|r| r.target == t("127.0.0.1") && r.origin == "a"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_from_a_peer_in_revoke_from_ends_every_lease_and_from_others_is_refused() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(&redis.url(), &["ops", "web", "mail"]);
    cfg.revoke_from = Some(vec!["ops".into()]);
    let mut hosts: Vec<Host> = ["ops", "web", "mail"]
        .iter()
        .map(|h| Host::new(h, cfg.clone()))
        .collect();
    for h in &mut hosts {
        h.start();
    }
    for h in &hosts {
        h.settle().await;
    }
    let (ops, web, mail) = (&hosts[0], &hosts[1], &hosts[2]);
    mail.ban("203.0.113.66", "postfix");
    web.ban("203.0.113.66", "sshd");
    wait_until(WAIT, "everybody holds the bans", || {
        ops.leases_from("mail").len() == 1
            && ops.leases_from("web").len() == 1
            && web.leases_from("mail").len() == 1
            && mail.leases_from("web").len() == 1
    })
    .await;
    // web may not revoke: refused everywhere, web's own leases end only on web.
    revoke_everywhere(&web.store, &t("203.0.113.66"), "web", clock::now()).unwrap();
    web.cluster.wake();
    wait_until(WAIT, "ops and mail refused web's revoke", || {
        ops.count("web", "revoke_denied") == 1 && mail.count("web", "revoke_denied") == 1
    })
    .await;
    assert_eq!(mail.local().len(), 1, "mail keeps its own ban");
    assert_eq!(ops.leases_from("mail").len(), 1);
    // ops may: every host ends every lease of the target.
    revoke_everywhere(&ops.store, &t("203.0.113.66"), "ops", clock::now()).unwrap();
    ops.cluster.wake();
    wait_until(WAIT, "no host holds the target", || {
        hosts
            .iter()
            .all(|h| h.store.leases_of(&t("203.0.113.66")).unwrap().is_empty())
            && mail.count("ops", "accepted") == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_the_hub_lock_when_the_holder_stops_renewing() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(&redis.url(), &["hub1", "hub2"]);
    cfg.lock_ttl = 1.0;
    let h1 = Host::new("hub1", cfg.clone());
    let h2 = Host::new("hub2", cfg.clone());
    let (l1, g1) = h1.cluster.hub_lock("exafs").unwrap();
    let (l2, mut g2) = h2.cluster.hub_lock("exafs").unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let t1 = tokio::spawn(l1.run(stop_future(&rx)));
    wait_until(WAIT, "hub1 holds the lock", || g1.may_write()).await;
    let t2 = tokio::spawn(l2.run(stop_future(&rx)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        g1.may_write() && !g2.may_write(),
        "one writer while the holder renews"
    );
    let term1 = g1.term().unwrap();
    assert!(g1.valid_until().is_some() && g2.valid_until().is_none());
    assert!(h1.cluster.check().await.unwrap().contains("answers"));
    // kill -9 of hub1: its renewals stop; it stops writing on its own before the TTL.
    t1.abort();
    let term2 = tokio::time::timeout(Duration::from_secs(5), g2.holder())
        .await
        .unwrap();
    assert!(term2 > term1, "a new term");
    assert!(!g1.may_write(), "the dead holder's gate is closed");
    assert!(
        h2.cluster
            .status()
            .unwrap()
            .locks
            .contains(&("exafs".to_string(), true))
    );
    // A clean stop releases it at once.
    tx.send(true).unwrap();
    t2.await.unwrap();
    assert!(redis.cli(&["EXISTS", "netban:lock:exafs"]).trim() == "0");
}
