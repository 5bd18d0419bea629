//! Catching up in pages, against a real redis-server: a receiver that was away takes what it
//! missed a page (one `XREAD`, one transaction) at a time, in order, each event once; and a
//! page whose transaction fails halfway is read again from the old cursor and applied once,
//! in full.

mod common;

use std::time::Duration;

use common::*;
use netban_cluster::revoke_everywhere;
use netban_core::clock;
use netban_testsupport::redis::RedisServer;

const WAIT: Duration = Duration::from_secs(60);

/// Outbox events of `origin` on this host, by kind: `(start, end)`.
fn events_from(h: &Host, origin: &str) -> (usize, usize) {
    let ev = h.store.events_after(0, 1_000_000).unwrap();
    let of = |k: &str| {
        ev.iter()
            .filter(|e| e.origin == origin && e.kind.as_str() == k)
            .count()
    };
    (of("start"), of("end"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_missed_3000_events_catches_up_across_pages_to_the_exact_set() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(&redis.url(), &["a", "b"]);
    // Thousands of bans within a minute of a's clock.
    cfg.limits.bans_per_minute = 100_000;
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
    let ip = |i: usize| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
    for i in 0..2500 {
        a.ban(&ip(i), "sshd");
    }
    // Ends interleaved with the starts they end, some pages later.
    for i in (0..2500).step_by(5) {
        a.unban(&ip(i), "sshd");
    }
    // b banned one of them itself; a's fleet-wide unban ends b's lease too.
    let local = netban_core::Target::parse(&ip(7)).unwrap();
    b.ban(&ip(7), "sshd");
    revoke_everywhere(&a.store, &local, "a", clock::now()).unwrap();
    a.cluster.wake();
    wait_until(WAIT, "a published everything", || {
        a.cluster.status().unwrap().bus.unwrap().publish_lag == 0
    })
    .await;
    b.start();
    wait_until(WAIT, "b caught up", || {
        b.leases_from("a") == a.local() && b.local().is_empty()
    })
    .await;
    assert_eq!(b.leases_from("a").len(), 1 + 2500 - 500 - 1);
    // 1 + 2500 starts, 500 ends, and the fleet-wide unban: a's own end, then the revoke.
    // Each taken once.
    assert_eq!(b.count("a", "accepted"), 1 + 2500 + 500 + 2);
    assert_eq!(b.count("a", "replay"), 0);
    assert_eq!(
        events_from(&b, "a"),
        (2501, 501),
        "each change's event once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_halfway_is_read_again_and_applied_once_in_full() {
    init_logs();
    let redis = RedisServer::start().unwrap();
    let mut cfg = config(&redis.url(), &["a", "b"]);
    // Thousands of bans within a minute of a's clock.
    cfg.limits.bans_per_minute = 100_000;
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
    for i in 0..300 {
        a.ban(&format!("198.51.{}.{}", i / 256, i % 256), "sshd");
    }
    wait_until(WAIT, "a published everything", || {
        a.cluster.status().unwrap().bus.unwrap().publish_lag == 0
    })
    .await;
    let cursor = b.store.bus_cursor("receiver").unwrap();
    // b's disk refuses the 200th lease of the page it will read.
    let db = rusqlite::Connection::open(b.dir.path().join("state/netban.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER fail BEFORE INSERT ON leases WHEN NEW.target = '198.51.0.199/32'
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    b.start();
    wait_until(WAIT, "b's receiver failed on the page", || {
        b.cluster
            .status()
            .unwrap()
            .bus
            .and_then(|s| s.receiver.last_error)
            .is_some_and(|e| e.contains("injected failure"))
    })
    .await;
    // Nothing of the page: not the 198 leases before the failure, not the cursor.
    assert_eq!(b.leases_from("a"), ["192.0.2.1/32 sshd"]);
    assert_eq!(b.store.bus_cursor("receiver").unwrap(), cursor);
    assert_eq!(b.count("a", "accepted"), 1);
    db.execute_batch("DROP TRIGGER fail").unwrap();
    wait_until(WAIT, "b caught up once the disk took it", || {
        b.leases_from("a") == a.local()
    })
    .await;
    assert_eq!(b.count("a", "accepted"), 301);
    assert_eq!(b.count("a", "replay"), 0);
    assert_eq!(events_from(&b, "a"), (301, 0));
}
