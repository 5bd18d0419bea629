//! The receiver's lag against a real redis-server: a receiver held back (here: its disk
//! refuses the page it must apply, so it reads the same page again and again) shows how far
//! the stream's head is ahead of its cursor, in `status` as in `/metrics`; once it catches
//! up the lag is 0.

mod common;

use std::time::Duration;

use common::*;
use netban_testsupport::redis::RedisServer;

const WAIT: Duration = Duration::from_secs(60);

fn lag(h: &Host) -> Option<f64> {
    h.cluster.status().unwrap().bus.and_then(|b| b.lag_seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_held_back_shows_its_lag_and_none_once_caught_up() {
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
    wait_until(WAIT, "b is caught up", || lag(&b) == Some(0.0)).await;
    b.kill();
    // Entry ids are milliseconds: what a publishes next is later than b's cursor.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..100 {
        a.ban(&format!("198.51.100.{i}"), "sshd");
    }
    wait_until(WAIT, "a published everything", || {
        a.cluster.status().unwrap().bus.unwrap().publish_lag == 0
    })
    .await;
    let cursor = b.store.bus_cursor("receiver").unwrap();
    // b's disk refuses a lease of the page it will read: it cannot get past that page.
    let db = rusqlite::Connection::open(b.dir.path().join("state/netban.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER fail BEFORE INSERT ON leases WHEN NEW.target = '198.51.100.50/32'
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
    assert_eq!(b.store.bus_cursor("receiver").unwrap(), cursor, "held back");
    let st = b.cluster.status().unwrap().bus.unwrap();
    let behind = st.lag_seconds.unwrap_or(0.0);
    assert!(
        behind >= 0.05,
        "b reads {behind} s behind; cursor {:?}, head {:?}",
        st.cursor,
        st.stream_head
    );
    db.execute_batch("DROP TRIGGER fail").unwrap();
    wait_until(WAIT, "b caught up once the disk took it", || {
        b.leases_from("a") == a.local()
    })
    .await;
    wait_until(WAIT, "b's lag is 0 again", || lag(&b) == Some(0.0)).await;
}
