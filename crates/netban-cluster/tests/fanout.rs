//! fail2ban-clusterd compatibility over the fanout line protocol (the harness's minimal
//! fanout server: the real one is not installable here).

mod common;

use std::time::Duration;

use common::*;
use netban_cluster::{ClusterConfig, FanoutConfig};
use netban_testsupport::fanout::{FanoutClient, FanoutServer};

const WAIT: Duration = Duration::from_secs(10);

fn fanout_config(server: &FanoutServer) -> ClusterConfig {
    ClusterConfig {
        fanout: Some(FanoutConfig {
            server: server.addr(),
            jails: Some(vec!["sshd".into(), "postfix".into()]),
            bantime: 600,
            ..FanoutConfig::default()
        }),
        ..ClusterConfig::default()
    }
}

async fn started(server: &FanoutServer, cfg: ClusterConfig) -> Host {
    let mut h = Host::new("web-01", cfg);
    h.start();
    wait_until(WAIT, "netban subscribed", || {
        server.subscribers("Fail2ban") == 1
    })
    .await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusterd_ban_becomes_a_lease_of_origin_fanout_and_its_unban_ends_it() {
    init_logs();
    let server = FanoutServer::start().unwrap();
    let h = started(&server, fanout_config(&server)).await;
    let mut clusterd = FanoutClient::connect(&server.addr()).unwrap();
    clusterd
        .announce("Fail2ban", "jail=sshd, action=banip, ip=192.0.2.44")
        .unwrap();
    wait_until(WAIT, "the lease exists", || {
        h.leases_from("fanout").len() == 1
    })
    .await;
    let l = &h
        .store
        .live_leases(netban_core::clock::now(), None)
        .unwrap()[0];
    assert_eq!(
        (l.jail.as_str(), l.bantime),
        ("sshd", 600),
        "the configured bantime"
    );
    assert!(
        h.changes.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "sinks were woken"
    );
    // Filtered: another jail, another channel.
    clusterd
        .announce("Fail2ban", "jail=nginx, action=banip, ip=192.0.2.45")
        .unwrap();
    clusterd
        .announce("Other", "jail=sshd, action=banip, ip=192.0.2.46")
        .unwrap();
    clusterd
        .announce("Fail2ban", "jail=sshd, action=unbanip, ip=192.0.2.44")
        .unwrap();
    wait_until(WAIT, "the unban ended it", || {
        h.leases_from("fanout").is_empty() && h.count("fanout", "accepted") == 2
    })
    .await;
    assert_eq!(h.count("fanout", "filtered"), 1);
    assert_eq!(h.count("fanout", "accepted"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_bans_are_announced_in_clusterd_format_and_not_taken_back() {
    init_logs();
    let server = FanoutServer::start().unwrap();
    let h = started(&server, fanout_config(&server)).await;
    // Subscribed after netban, so that `started` counts netban alone (a clusterd subscribed
    // first made it see one subscriber before netban's, or two and never one).
    let mut clusterd = FanoutClient::connect(&server.addr()).unwrap();
    clusterd.subscribe("Fail2ban").unwrap();
    wait_until(WAIT, "clusterd subscribed", || {
        server.subscribers("Fail2ban") == 2
    })
    .await;
    h.ban("198.51.100.23", "sshd");
    h.ban("2001:db8::5", "postfix");
    h.unban("198.51.100.23", "sshd");
    let mut got = Vec::new();
    let end = std::time::Instant::now() + WAIT;
    while got.len() < 3 && std::time::Instant::now() < end {
        got.extend(clusterd.messages("Fail2ban", Duration::from_millis(200)));
    }
    assert_eq!(
        got,
        vec![
            "jail=sshd, action=banip, ip=198.51.100.23",
            "jail=postfix, action=banip, ip=2001:db8::5",
            "jail=sshd, action=unbanip, ip=198.51.100.23",
        ]
    );
    // Its own announcements came back over the subscription: recognised, not applied.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.leases_from("fanout").is_empty());
    assert_eq!(h.count("fanout", "accepted"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clusterd_messages_are_refused_and_nothing_is_run() {
    init_logs();
    let server = FanoutServer::start().unwrap();
    let mut cfg = fanout_config(&server);
    cfg.limits.bans_per_minute = 50;
    let h = started(&server, cfg).await;
    let marker = h.dir.path().join("pwned");
    let mut clusterd = FanoutClient::connect(&server.addr()).unwrap();
    let m = marker.display();
    for msg in [
        "jail=sshd, action=banip, ip=1.2.3.4;id".to_string(),
        format!("jail=sshd, action=banip, ip=1.2.3.4;touch {m}"),
        format!("jail=sshd, action=banip, ip=$(touch {m})"),
        format!("jail=`touch {m}`, action=banip, ip=1.2.3.4"),
    ] {
        clusterd.announce("Fail2ban", &msg).unwrap();
    }
    clusterd
        .announce("Fail2ban", "jail=sshd, action=banip, ip=0.0.0.0/0")
        .unwrap();
    let huge = format!("jail=sshd, action=banip, ip={}", "1".repeat(1 << 20));
    clusterd.announce("Fail2ban", &huge).unwrap();
    wait_until(WAIT, "every hostile message counted", || {
        h.count("(untrusted)", "malformed") + h.count("fanout", "malformed") == 5
            && h.count("fanout", "guard") == 1
    })
    .await;
    assert!(h.leases_from("fanout").is_empty());
    assert!(!marker.exists(), "nothing was run");
    // A flood over the cap: refused beyond it, never queued.
    for i in 0..300 {
        clusterd
            .announce(
                "Fail2ban",
                &format!("jail=sshd, action=banip, ip=198.51.{}.{}", i / 250, i % 250),
            )
            .unwrap();
    }
    wait_until(WAIT, "the flood was taken or refused", || {
        h.count("fanout", "accepted") + h.count("fanout", "rate") == 300
    })
    .await;
    let held = h.leases_from("fanout").len();
    // The refused 0.0.0.0/0 took one of the minute's 50; the minute may roll over once.
    assert!(
        (49..=100).contains(&held),
        "{held} held: the cap is 50 a minute"
    );
    // The connection survived all of it.
    clusterd
        .announce("Fail2ban", "jail=postfix, action=unbanip, ip=198.51.0.0")
        .unwrap();
    clusterd
        .announce("Fail2ban", "jail=sshd, action=unbanip, ip=198.51.0.0")
        .unwrap();
    wait_until(WAIT, "still listening", || {
        h.leases_from("fanout").len() == held - 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_reconnects_when_the_server_drops_it() {
    init_logs();
    let server = FanoutServer::start().unwrap();
    let h = started(&server, fanout_config(&server)).await;
    server.disconnect_all();
    wait_until(WAIT, "netban subscribed again", || {
        server.subscribers("Fail2ban") == 1
    })
    .await;
    let mut clusterd = FanoutClient::connect(&server.addr()).unwrap();
    clusterd
        .announce("Fail2ban", "jail=sshd, action=banip, ip=192.0.2.77")
        .unwrap();
    wait_until(WAIT, "the ban after the reconnect arrived", || {
        h.leases_from("fanout").len() == 1
    })
    .await;
}
