//! What a receiving daemon refuses: forged and replayed events, bans over a peer's caps or
//! refused by its own guard, fleet-wide unbans from hosts not in `revoke_from`. Each refusal
//! is counted by cause and makes no lease.

use crate::fleet::{Fleet, HostSpec, addrs};

fn xadd(fleet: &Fleet, wire: &str) {
    fleet
        .redis
        .cli(&["XADD", "netban:bus:stream", "*", "e", wire]);
}

#[test]
fn forged_and_replayed_events_make_no_lease_and_are_counted() {
    let fleet = Fleet::start(&["a", "b"]);
    let (a, b) = (fleet.host("a"), fleet.host("b"));
    a.ban("sshd", "198.51.100.40");
    fleet.wait("b has a's ban", || b.from("a").len() == 1);
    let stream = fleet.redis.cli(&["XRANGE", "netban:bus:stream", "-", "+"]);
    let genuine = stream
        .lines()
        .find(|l| l.starts_with("netban1 "))
        .unwrap_or_else(|| panic!("no event in the stream:\n{stream}"))
        .to_string();
    // Tampered: a's genuine event for another address; replayed: the genuine one again;
    // garbage with shell syntax.
    xadd(
        &fleet,
        &genuine.replacen("198.51.100.40/32", "203.0.113.41/32", 1),
    );
    xadd(&fleet, &genuine);
    xadd(&fleet, "netban1 a 1 2 3 ; touch /tmp/netban-pwned");
    fleet.wait("b counted the three", || {
        let c = b.counts("a");
        let u = b.counts("(untrusted)");
        c["bad_signature"] == 1 && c["replay"] == 1 && u["malformed"] == 1
    });
    assert_eq!(b.from("a"), ["198.51.100.40/32"], "{}", fleet.ctx());
    assert!(!std::path::Path::new("/tmp/netban-pwned").exists());
    let status = b.status();
    assert!(status.contains("refused"), "{status}");
    assert!(
        b.metrics()
            .contains("netban_cluster_events_total{peer=\"a\",result=\"bad_signature\"} 1"),
        "{}",
        b.metrics()
    );
}

#[test]
fn a_peer_over_its_rate_or_banning_what_the_guard_protects_is_refused() {
    let fleet = Fleet::start_specs(vec![
        HostSpec::plain("a"),
        HostSpec::plain("b")
            .with("cluster.limits", "bans_per_minute = 5")
            .with("guard", "allow = [\"203.0.113.0/24\"]"),
    ]);
    let (a, b) = (fleet.host("a"), fleet.host("b"));
    // The rate counts minutes of a's clock: keep the burst inside one.
    let second = netban_core::clock::now() % 60;
    if second > 45 {
        std::thread::sleep(std::time::Duration::from_secs((61 - second) as u64));
    }
    a.ban("sshd", "203.0.113.9");
    for ip in addrs(0, 8) {
        a.ban("sshd", &ip);
    }
    fleet.wait("b refused the allowlisted ban and 4 over the rate", || {
        let c = b.counts("a");
        c["guard"] == 1 && c["rate"] == 4
    });
    // 5 a minute: the allowlisted one counts against the rate before the guard refuses it.
    let got = b.from("a");
    assert_eq!(got.len(), 4, "{got:?}\n{}", fleet.ctx());
    assert!(!got.iter().any(|t| t.starts_with("203.0.113.")), "{got:?}");
    assert!(b.status().contains("caps hit 4"), "{}", b.status());
}

#[test]
fn unban_everywhere_ends_every_lease_and_only_from_allowed_hosts() {
    let revoke = "revoke_from = [\"a\"]";
    let fleet = Fleet::start_specs(vec![
        HostSpec::plain("a").with("cluster", revoke),
        HostSpec::plain("b").with("cluster", revoke),
        HostSpec::plain("c").with("cluster", revoke),
    ]);
    let (a, b, c) = (fleet.host("a"), fleet.host("b"), fleet.host("c"));
    // Everybody bans X, locally.
    for h in [a, b, c] {
        h.ban("sshd", "198.51.100.50");
    }
    fleet.wait("every host holds every host's ban of X", || {
        [a, b, c].iter().all(|h| {
            h.leases()
                .iter()
                .find(|(t, _)| t == "198.51.100.50/32")
                .is_some_and(|(_, o)| o.len() == 3)
        })
    });
    a.nb.expect(0, &["unban", "--everywhere", "198.51.100.50"]);
    for h in [a, b, c] {
        fleet.wait(&format!("{} ended every lease of X", h.id), || {
            h.leases().iter().all(|(t, _)| t != "198.51.100.50/32")
        });
        fleet.wait(&format!("{} lifted X from its sink", h.id), || {
            h.sink_log().contains("unban 198.51.100.50")
        });
    }
    // From b (not in revoke_from): a and c keep their bans.
    a.ban("sshd", "198.51.100.51");
    c.ban("sshd", "198.51.100.51");
    fleet.wait("b holds both", || {
        b.leases()
            .iter()
            .any(|(t, o)| t == "198.51.100.51/32" && o.len() == 2)
    });
    b.nb.expect(0, &["unban", "--everywhere", "198.51.100.51"]);
    for h in [a, c] {
        fleet.wait(&format!("{} refused b's revoke", h.id), || {
            h.counts("b")["revoke_denied"] == 1
        });
        assert!(
            h.leases().iter().any(|(t, _)| t == "198.51.100.51/32"),
            "{}: {:?}\n{}",
            h.id,
            h.leases(),
            fleet.ctx()
        );
    }
}

#[test]
fn revoke_from_naming_a_host_that_is_not_a_peer_is_a_warning_not_a_refusal() {
    // As DESIGN.md's example has it: ops-01 is in revoke_from, not under [cluster.peers].
    let fleet = Fleet::start_specs(vec![
        HostSpec::plain("a").with("cluster", "revoke_from = [\"ops-01\", \"a\"]"),
        HostSpec::plain("b"),
    ]);
    let a = fleet.host("a");
    let warning = "revoke_from names ops-01, which is not under [cluster.peers]: no revoke from it can be verified, so none will be accepted";
    // The daemon started (no exit 3), and said so.
    fleet.wait("a's daemon warned at start", || {
        netban_testsupport::runner::read(&a.nb.path("netban.log")).contains(warning)
    });
    let out = netban_testsupport::runner::stdout(&a.nb.expect(0, &["check"]));
    assert!(
        out.contains(&format!("cluster: WARNING: {warning}")),
        "{out}"
    );
    assert!(out.contains("cluster: ok"), "{out}");
    // a names itself too: no warning for that.
    assert_eq!(out.matches("revoke_from names").count(), 1, "{out}");
    // It works: a's bans still reach b.
    a.ban("sshd", "198.51.100.60");
    let b = fleet.host("b");
    fleet.wait("b has a's ban", || b.from("a") == ["198.51.100.60/32"]);
}
