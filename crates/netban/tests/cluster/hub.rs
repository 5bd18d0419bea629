//! Hubs: two in front of one real ExaFS with an `exclusive` sink, handing it over when the
//! holder is killed; `min_origins` holding the big hammer back; peer bans fed into a real
//! fail2ban jail through `ban_batch` (`fail2ban-client set JAIL banip IP...`).

use std::collections::BTreeMap;
use std::time::Duration;

use netban_testsupport::config::{Sink, toml_str};
use netban_testsupport::exafs::ExaFs;
use netban_testsupport::fail2ban::{ActionFile, Fail2ban, Jail, Options};

use crate::fleet::{Fleet, HostSpec, addrs, targets};

/// Active rules in ExaFS: prefix -> how many.
fn active(exafs: &ExaFs) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in exafs.rtbh_rules().into_iter().filter(|r| r.is_active()) {
        *out.entry(r.prefix()).or_insert(0) += 1;
    }
    out
}

#[test]
fn the_standby_hub_takes_over_and_exafs_ends_with_exactly_the_banned_set() {
    let exafs = ExaFs::start().unwrap_or_else(|e| panic!("starting ExaFS: {e:#}"));
    let hub = |id: &'static str| {
        HostSpec::plain(id)
            .with("cluster", "lock_ttl = 3")
            .sinks(vec![
                Sink::exafs(&exafs.url(), exafs.api_key())
                    .set("exclusive", "true")
                    .set("origins", "[\"peers\"]"),
            ])
    };
    let mut fleet = Fleet::start_specs(vec![HostSpec::plain("edge"), hub("hub1")]);
    fleet.wait("hub1 holds the lock", || {
        fleet
            .host("hub1")
            .status()
            .contains("this host holds the lock")
    });
    let h2 = fleet.add(hub("hub2"));
    fleet.start_host(h2);
    assert!(
        fleet.host("hub2").status().contains("standby"),
        "{}",
        fleet.host("hub2").status()
    );
    let banned = addrs(0, 40);
    for (n, ip) in banned.iter().enumerate() {
        fleet.host("edge").ban("sshd", ip);
        if n == 15 {
            // The holder dies mid-burst, mid-batch maybe.
            let h1 = fleet.index("hub1");
            if let Some(d) = fleet.hosts[h1].daemon.as_mut() {
                d.kill9();
            }
            fleet.hosts[h1].daemon = None;
        }
    }
    for ip in &banned[..10] {
        fleet.host("edge").unban("sshd", ip);
    }
    let want: BTreeMap<String, usize> =
        targets(&banned[10..]).into_iter().map(|t| (t, 1)).collect();
    wait_exact(&fleet, &exafs, &want, "after the takeover");
    assert!(
        fleet
            .host("hub2")
            .status()
            .contains("this host holds the lock"),
        "{}",
        fleet.host("hub2").status()
    );
    // The old holder comes back as the standby and changes nothing.
    let h1 = fleet.index("hub1");
    fleet.start_host(h1);
    assert!(fleet.host("hub1").status().contains("standby"));
    for ip in &banned[10..15] {
        fleet.host("edge").unban("sshd", ip);
    }
    let want: BTreeMap<String, usize> =
        targets(&banned[15..]).into_iter().map(|t| (t, 1)).collect();
    wait_exact(&fleet, &exafs, &want, "with hub1 back as standby");
}

fn wait_exact(fleet: &Fleet, exafs: &ExaFs, want: &BTreeMap<String, usize>, when: &str) {
    netban_testsupport::wait::wait_until(
        &format!("ExaFS holds exactly the banned set, once each ({when})"),
        Duration::from_secs(90),
        Duration::from_millis(250),
        || format!("ExaFS has {:?}\n{}", active(exafs), fleet.ctx()),
        || (active(exafs) == *want).then_some(()),
    );
}

#[test]
fn min_origins_sends_only_what_enough_hosts_banned() {
    let fleet = Fleet::start_specs(vec![
        HostSpec::plain("a"),
        HostSpec::plain("b"),
        HostSpec::plain("hub").sinks(vec![
            Sink::exec_to_file("sink.log")
                .set("origins", "[\"peers\"]")
                .set("min_origins", "2"),
        ]),
    ]);
    let (a, b, hub) = (fleet.host("a"), fleet.host("b"), fleet.host("hub"));
    a.ban("sshd", "198.51.100.60");
    fleet.wait("the hub holds a's lease", || hub.from("a").len() == 1);
    // One origin is not enough: give the hub's runner time to (not) act.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !hub.sink_log().contains("198.51.100.60"),
        "{}",
        hub.sink_log()
    );
    b.ban("sshd", "198.51.100.60");
    fleet.wait("two origins: the hub's sink takes it", || {
        hub.sink_log().contains("ban sshd 3600 198.51.100.60")
    });
    b.unban("sshd", "198.51.100.60");
    fleet.wait("one origin left: the hub's sink lets it go", || {
        hub.sink_log().contains("unban 198.51.100.60")
    });
}

#[test]
fn peer_bans_feed_a_fail2ban_jail_through_batched_calls() {
    let noop = ActionFile::new(
        "noop.conf",
        "[Definition]\nactionban = true\nactionunban = true\n",
    );
    let f2b = Fail2ban::start(
        Options::new()
            .action_file(noop)
            .jail(Jail::new("peers", "noop")),
    )
    .unwrap_or_else(|e| panic!("starting fail2ban: {e:#}"));
    let sock = f2b.socket().display().to_string();
    let call = |verb: &str| {
        format!(
            "[\"/usr/bin/fail2ban-client\", \"-s\", {}, \"set\", \"peers\", \"{verb}\", \"{{ips}}\"]",
            toml_str(&sock)
        )
    };
    let fleet = Fleet::start_specs(vec![
        HostSpec::plain("a"),
        HostSpec::plain("r").sinks(vec![
            Sink::new("jail", "exec")
                .set("ban_batch", call("banip"))
                .set("unban_batch", call("unbanip"))
                .set("batch_window", "0.5"),
        ]),
    ]);
    let a = fleet.host("a");
    let banned = addrs(0, 5);
    for ip in &banned {
        a.ban("sshd", ip);
    }
    let mut want = banned.clone();
    want.sort();
    fleet.wait("fail2ban's jail holds a's five bans", || {
        let mut got = f2b.banned("peers");
        got.sort();
        got == want
    });
    for ip in &banned[..2] {
        a.unban("sshd", ip);
    }
    let mut left = banned[2..].to_vec();
    left.sort();
    fleet.wait("fail2ban's jail let the two unbanned go", || {
        let mut got = f2b.banned("peers");
        got.sort();
        got == left
    });
}
