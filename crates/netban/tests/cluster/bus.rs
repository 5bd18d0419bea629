//! The bus: bans and unbans cross the fleet, whatever happened to the receivers and Redis.

use netban_testsupport::runner::stderr;

use crate::fleet::{Fleet, HostSpec, addrs, targets};

#[test]
fn a_ban_on_one_host_reaches_every_other_and_so_does_its_unban() {
    let fleet = Fleet::start(&["a", "b", "c"]);
    let (a, b, c) = (fleet.host("a"), fleet.host("b"), fleet.host("c"));
    a.ban("sshd", "198.51.100.20");
    for h in [b, c] {
        fleet.wait(&format!("{} enforces a's ban", h.id), || {
            h.sink_log().contains("ban sshd") && h.sink_log().contains("198.51.100.20")
        });
        assert_eq!(h.from("a"), ["198.51.100.20/32"], "{}", fleet.ctx());
    }
    // Peer leases are never published again: a holds only its own lease.
    assert_eq!(a.leases().len(), 1, "{:?}\n{}", a.leases(), fleet.ctx());
    a.unban("sshd", "198.51.100.20");
    for h in [b, c] {
        fleet.wait(&format!("{} lifts a's ban", h.id), || {
            h.sink_log().contains("unban 198.51.100.20")
        });
        assert!(h.leases().is_empty(), "{:?}", h.leases());
    }
    // What the operator sees: the peer, its events, and the same in /metrics.
    let status = b.status();
    assert!(status.contains("peer a: last event"), "{status}");
    assert!(status.contains("2 accepted"), "{status}");
    assert!(status.contains("receiver connected"), "{status}");
    assert!(status.contains("caught up with the stream"), "{status}");
    let metrics = b.metrics();
    assert!(
        metrics.contains("netban_cluster_events_total{peer=\"a\",result=\"accepted\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netban_cluster_bus_up{link=\"receiver\"} 1"),
        "{metrics}"
    );
    // explain says where a peer lease came from.
    a.ban("sshd", "198.51.100.21");
    fleet.wait("b has the second ban", || !b.from("a").is_empty());
    let why = netban_testsupport::runner::stdout(&b.nb.expect(0, &["explain", "198.51.100.21"]));
    assert!(why.contains("jail sshd from a"), "{why}");
}

#[test]
fn a_host_stopped_during_100_bans_catches_up_when_it_starts() {
    let mut fleet = Fleet::start(&["a", "b"]);
    let bi = fleet.index("b");
    fleet.stop_host(bi);
    let banned = addrs(0, 100);
    for ip in &banned {
        fleet.host("a").ban("sshd", ip);
    }
    fleet.start_host(bi);
    let b = fleet.host("b");
    fleet.wait("b caught up with 100 bans", || b.from("a").len() == 100);
    assert_eq!(b.from("a"), targets(&banned));
    // Every event once: 100 accepted, nothing refused.
    let counts = b.counts("a");
    assert_eq!(counts["accepted"], 100, "{counts}");
    assert_eq!(counts["replay"], 0, "{counts}");
}

#[test]
fn a_host_away_past_the_trimmed_stream_resyncs_to_the_exact_set() {
    let mut fleet = Fleet::start(&["a", "b"]);
    let bi = fleet.index("b");
    let first = addrs(0, 30);
    for ip in &first {
        fleet.host("a").ban("sshd", ip);
    }
    fleet.wait("b has the first 30", || {
        fleet.host("b").from("a").len() == 30
    });
    fleet.stop_host(bi);
    // While b is away: 10 unbans, 7 new bans; then the stream loses what b missed, as
    // `retention` trimming does.
    for ip in &first[..10] {
        fleet.host("a").unban("sshd", ip);
    }
    let later = addrs(100, 7);
    for ip in &later {
        fleet.host("a").ban("sshd", ip);
    }
    let prefix = "netban";
    fleet
        .redis
        .cli(&["XTRIM", &format!("{prefix}:bus:stream"), "MAXLEN", "1"]);
    fleet.start_host(bi);
    let mut want: Vec<String> = first[10..].iter().chain(&later).cloned().collect();
    want.sort();
    let want = targets(&want);
    let b = fleet.host("b");
    fleet.wait("b resynced to a's 27 bans", || b.from("a") == want);
    // And it enforces exactly them: the 10 unbanned go out of its sink.
    fleet.wait("b's sink let the 10 unbanned go", || {
        let log = b.sink_log();
        first[..10]
            .iter()
            .all(|ip| log.contains(&format!("unban {ip}\n")))
    });
}

#[test]
fn a_new_host_gets_the_whole_active_set() {
    let mut fleet = Fleet::start(&["a", "b"]);
    let banned = addrs(0, 25);
    for ip in &banned {
        fleet.host("a").ban("sshd", ip);
    }
    for ip in &banned[..5] {
        fleet.host("a").unban("sshd", ip);
    }
    fleet.host("b").ban("web", "198.51.100.77");
    let d = fleet.add(HostSpec::plain("d"));
    fleet.start_host(d);
    let d = &fleet.hosts[d];
    let want = targets(&banned[5..]);
    fleet.wait("d has a's 20 bans", || d.from("a") == want);
    fleet.wait("d has b's ban", || d.from("b") == ["198.51.100.77/32"]);
}

#[test]
fn bans_made_while_redis_is_down_arrive_when_it_is_back() {
    let mut fleet = Fleet::start(&["a", "b"]);
    fleet.host("a").ban("sshd", "198.51.100.30");
    fleet.wait("b has the first ban", || {
        fleet.host("b").from("a").len() == 1
    });
    fleet.redis.stop();
    let banned = addrs(0, 20);
    let started = std::time::Instant::now();
    for ip in &banned {
        fleet.host("a").ban("sshd", ip);
    }
    // Redis down never holds a ban up.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "20 bans took {:?} with Redis down",
        started.elapsed()
    );
    fleet.host("a").unban("sshd", "198.51.100.30");
    // Redis comes back empty (no persistence): nothing is lost.
    fleet.redis.start_again().expect("redis starts again");
    let want = targets(&banned);
    let b = fleet.host("b");
    fleet.wait("b has every ban made while Redis was down", || {
        b.from("a") == want
    });
}

/// A host with no sink has nothing to deliver itself, but its daemon's publisher has: the CLI
/// pokes the daemon, which wakes the publisher, so the change goes out at once instead of at
/// the publisher's next poll (a second later). What shows it: the CLI says it poked the daemon
/// (`-vv`), which the poll never does. (The speed itself is not asserted: timings on a shared
/// machine make flaky tests.)
#[test]
fn a_host_without_a_sink_pokes_its_daemon_so_its_bans_go_out_at_once() {
    let fleet = Fleet::start_specs(vec![
        HostSpec::plain("a").sinks(Vec::new()),
        HostSpec::plain("b"),
    ]);
    let (a, b) = (fleet.host("a"), fleet.host("b"));
    let said = stderr(
        &a.nb
            .expect(0, &["-vv", "ban", "--jail", "sshd", "198.51.100.70"]),
    );
    assert!(said.contains("daemon poked"), "{said}");
    fleet.wait("b has a's ban", || b.from("a") == ["198.51.100.70/32"]);
    let said = stderr(
        &a.nb
            .expect(0, &["-vv", "unban", "--jail", "sshd", "198.51.100.70"]),
    );
    assert!(said.contains("daemon poked"), "{said}");
    fleet.wait("b lifted a's ban", || b.from("a").is_empty());
}
