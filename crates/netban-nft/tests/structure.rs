//! netban's own table against the real nftables, each test in its own network namespace:
//! what repair sees after hand edits, the table and rules coming back, `netban check`.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::*;
use netban_core::sink::Owner;
use netban_core::sink::Retry;
use netban_testsupport::netns::{self, Netns};

/// The drop rules of a chain, as `nft list chain` prints them (`ip saddr @hosts4 counter
/// packets 0 bytes 0 drop comment "netban"` -> `ip saddr @hosts4`), sorted.
fn rules(ns: &Netns, chain: &str) -> Vec<String> {
    let text = ns.nft(&["list", "chain", "inet", TABLE, chain]);
    let mut out: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" drop"))
        .map(|l| l.split(" counter").next().unwrap_or(l).to_string())
        .collect();
    out.sort();
    out
}

fn hook_line(ns: &Netns, chain: &str) -> String {
    ns.nft(&["list", "chain", "inet", TABLE, chain])
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("type filter"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_table_gets_a_drop_rule_per_set_in_every_hook() {
    netns::block_on(|ns| async move {
        let sink = sink("hooks = [\"input\", \"forward\"]\npriority = -20\n");
        apply_ok(&sink, &[ban("198.51.100.3", 600)]).await;
        for chain in ["input", "forward"] {
            assert_eq!(
                hook_line(&ns, chain),
                format!("type filter hook {chain} priority -20; policy accept;")
            );
            assert_eq!(rules(&ns, chain), ["ip saddr @hosts4", "ip6 saddr @hosts6"]);
        }
        // A network of a new length brings its set and its rules, in the same transaction.
        apply_ok(
            &sink,
            &[ban("203.0.113.0/24", 600), ban("2001:db8::/56", 600)],
        )
        .await;
        assert_eq!(
            rules(&ns, "forward"),
            [
                "ip saddr @hosts4",
                "ip saddr @nets4_24",
                "ip6 saddr @hosts6",
                "ip6 saddr @nets6_56"
            ]
        );

        // A new priority (config changed, daemon restarted): the chain is made again, the
        // elements stay, the rules are not doubled, and the dropped hook's chain goes.
        let moved = common::sink("hooks = [\"input\"]\npriority = -5\n");
        apply_ok(&moved, &[ban("198.51.100.4", 600)]).await;
        assert_eq!(
            hook_line(&ns, "input"),
            "type filter hook input priority filter - 5; policy accept;"
        );
        assert_eq!(rules(&ns, "input").len(), 4);
        assert!(
            ns.try_nft(&["list", "chain", "inet", TABLE, "forward"])
                .is_err()
        );
        assert_eq!(ns.values(TABLE, "hosts4"), ["198.51.100.3", "198.51.100.4"]);
        assert_eq!(ns.values(TABLE, "nets4_24"), ["203.0.113.0/24"]);
    });
}

#[test]
fn a_new_netban_process_leaves_a_complete_table_alone() {
    netns::block_on(|ns| async move {
        apply_ok(&sink(""), &[ban("198.51.100.7", 600)]).await;
        ns.add_address("198.51.100.7");
        assert!(!ns.ping("198.51.100.7", "127.0.0.1"));
        let counted = ns.nft(&["list", "chain", "inet", TABLE, "input"]);
        assert!(counted.contains("@hosts4 counter packets 1 "), "{counted}");
        // Another process (the CLI delivering inline, a restarted daemon) bans something.
        let monitor = ns.monitor();
        apply_ok(&sink(""), &[ban("198.51.100.8", 600)]).await;
        assert_eq!(monitor.wait_generations(1), 1);
        let after = ns.nft(&["list", "chain", "inet", TABLE, "input"]);
        assert!(
            after.contains("@hosts4 counter packets 1 "),
            "rules kept, counters too: {after}"
        );
    });
}

#[test]
fn an_element_deleted_by_hand_is_missing_from_held() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        let (a, b) = (ban("198.51.100.3", 600), ban("2001:db8::/48", 900));
        apply_ok(&sink, &[a.clone(), b.clone()]).await;
        let held = sink.held_entries(deadline()).await.unwrap();
        assert_eq!(held.len(), 2);
        for c in [&a, &b] {
            let netban_core::sink::Change::Add {
                target, expires, ..
            } = c
            else {
                unreachable!()
            };
            let h = held.iter().find(|h| &h.target == target).expect("listed");
            assert_eq!(h.owner, Owner::This);
            assert_eq!(h.expires, *expires, "the exact expiry netban asked for");
        }
        assert_eq!(
            held.iter()
                .map(|h| h.remote_id.clone().unwrap())
                .collect::<Vec<_>>(),
            ["hosts4", "nets6_48"]
        );

        ns.delete_element(TABLE, "hosts4", "198.51.100.3");
        let held = sink.held_entries(deadline()).await.unwrap();
        assert_eq!(
            held.iter().map(|h| h.target).collect::<Vec<_>>(),
            [t("2001:db8::/48")]
        );

        // Something netban would not have put there (a /25 in the /24 set) is not netban's.
        ns.nft(&[
            "add",
            "set",
            "inet",
            TABLE,
            "nets4_24",
            "{ type ipv4_addr; flags interval,timeout; }",
        ]);
        ns.add_element(TABLE, "nets4_24", "192.0.2.0/25");
        let held = sink.held_entries(deadline()).await.unwrap();
        let odd = held.iter().find(|h| h.target == t("192.0.2.0/25")).unwrap();
        assert_eq!(odd.owner, Owner::Foreign);
    });
}

#[test]
fn a_table_deleted_by_hand_is_made_again_by_the_next_batch() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(&sink, &[ban("198.51.100.3", 600)]).await;
        ns.delete_table(TABLE);
        apply_ok(
            &sink,
            &[ban("198.51.100.4", 600), ban("203.0.113.0/24", 600)],
        )
        .await;
        assert_eq!(ns.values(TABLE, "hosts4"), ["198.51.100.4"]);
        assert_eq!(ns.values(TABLE, "nets4_24"), ["203.0.113.0/24"]);
        assert_eq!(
            rules(&ns, "input"),
            [
                "ip saddr @hosts4",
                "ip saddr @nets4_24",
                "ip6 saddr @hosts6"
            ]
        );
    });
}

#[test]
fn a_table_deleted_by_hand_is_made_again_by_repair() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(&sink, &[ban("198.51.100.3", 600)]).await;
        ns.delete_table(TABLE);
        let held = sink.held_entries(deadline()).await.unwrap();
        assert!(
            held.is_empty(),
            "repair sees the ban missing and adds it again"
        );
        assert_eq!(
            rules(&ns, "input"),
            ["ip saddr @hosts4", "ip6 saddr @hosts6"]
        );
    });
}

#[test]
fn a_drop_rule_deleted_by_hand_is_put_back_by_repair() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(
            &sink,
            &[ban("198.51.100.3", 600), ban("203.0.113.0/24", 600)],
        )
        .await;
        ns.nft(&["flush", "chain", "inet", TABLE, "input"]);
        let held = sink.held_entries(deadline()).await.unwrap();
        assert_eq!(held.len(), 2, "the elements are still there");
        assert_eq!(
            rules(&ns, "input"),
            [
                "ip saddr @hosts4",
                "ip saddr @nets4_24",
                "ip6 saddr @hosts6"
            ]
        );
        // Nothing is doubled by a second pass over a complete table.
        sink.held_entries(deadline()).await.unwrap();
        apply_ok(&sink, &[ban("198.51.100.4", 600)]).await;
        assert_eq!(rules(&ns, "input").len(), 3);
    });
}

#[test]
fn check_says_what_it_found_and_changes_nothing() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        let line = sink.check_sink(deadline()).await.unwrap();
        assert_eq!(
            line,
            "table inet netban does not exist yet; netban makes it at the first ban (checked with nft --check), drop rules in input at priority -10"
        );
        assert!(ns.tables().is_empty(), "check made nothing");
        apply_ok(&sink, &[ban("203.0.113.0/24", 600)]).await;
        let line = sink.check_sink(deadline()).await.unwrap();
        assert_eq!(
            line,
            "table inet netban is ready: sets hosts4, hosts6, nets4_24; drop rules in input at priority -10"
        );
        ns.nft(&["flush", "chain", "inet", TABLE, "input"]);
        let line = sink.check_sink(deadline()).await.unwrap();
        assert_eq!(
            line,
            "table inet netban is incomplete (chain input has no drop rule for set hosts4; chain input has no drop rule for set hosts6; chain input has no drop rule for set nets4_24); netban completes it at the next batch (checked with nft --check)"
        );
        assert!(rules(&ns, "input").is_empty(), "check changed nothing");
    });
}

#[test]
fn without_privilege_check_and_bans_say_how_to_fix_it() {
    netns::block_on(|_ns| async move {
        // The real nft, run as nobody, and as root without capabilities (what netban.service
        // does with an empty CapabilityBoundingSet=); setpriv is in util-linux.
        let dir = tempfile::tempdir().unwrap();
        for (name, who, first) in [
            (
                "nobody",
                "--reuid=65534 --regid=65534 --clear-groups",
                "Operation not permitted (you must be root)",
            ),
            ("root", "", "Operation not permitted"),
        ] {
            let wrapper = dir.path().join(format!("nft-as-{name}"));
            std::fs::write(
                &wrapper,
                format!("#!/bin/sh\nexec setpriv {who} --inh-caps=-all --bounding-set=-all /usr/sbin/nft \"$@\"\n"),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
            let sink = sink(&format!("nft = {:?}\n", wrapper.to_str().unwrap()));
            let err = sink.check_sink(deadline()).await.unwrap_err();
            assert_eq!(err.retry, Retry::Later);
            assert!(
                err.message.starts_with(&format!(
                    "fw: listing the structure of table inet netban: nft said \"{first}"
                )) && err.message.ends_with(
                    "; netban needs CAP_NET_ADMIN to change the firewall: run it as root, and under systemd grant it (netban.service: CapabilityBoundingSet=CAP_NET_ADMIN and AmbientCapabilities=CAP_NET_ADMIN; see docs/nftables.md)"
                ),
                "{name}: {}",
                err.message
            );
            let out = apply(&sink, &[ban("198.51.100.3", 600)]).await;
            let err = out[0].clone().unwrap_err();
            assert!(err.message.contains("CAP_NET_ADMIN"), "{}", err.message);
        }
    });
}

#[test]
fn a_missing_nft_binary_says_what_to_install() {
    netns::block_on(|_ns| async move {
        let sink = sink("nft = \"/nonexistent/nft\"\n");
        let err = sink.check_sink(deadline()).await.unwrap_err();
        assert_eq!(
            err.message,
            "fw: cannot run /nonexistent/nft: No such file or directory (os error 2); install nftables (apt-get install nftables) or set nft = to the binary's path"
        );
    });
}

#[test]
fn an_nft_call_that_hangs_is_killed_at_the_timeout_and_retried_soon() {
    netns::block_on(|_ns| async move {
        let dir = tempfile::tempdir().unwrap();
        let wrapper = dir.path().join("nft-hangs");
        std::fs::write(&wrapper, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sink = sink(&format!(
            "nft = {:?}\ntimeout = 0.5\n",
            wrapper.to_str().unwrap()
        ));
        let started = std::time::Instant::now();
        let out = apply(&sink, &[ban("198.51.100.3", 600), unban("192.0.2.1")]).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        for o in out {
            let err = o.unwrap_err();
            assert_eq!(err.retry, Retry::Soon);
            assert_eq!(
                err.message,
                "fw: listing the structure of table inet netban did not finish within 0.5 s and was killed; nothing of it was applied"
            );
        }
    });
}

#[test]
fn a_hung_nft_wrapper_is_killed_with_the_children_it_started() {
    netns::block_on(|_ns| async move {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("child.pid");
        let wrapper = dir.path().join("nft-wrapper");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nsleep 60 &\necho $! > {}\nwait\n",
                pids.to_str().unwrap()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sink = sink(&format!(
            "nft = {:?}\ntimeout = 0.5\n",
            wrapper.to_str().unwrap()
        ));
        for o in apply(&sink, &[ban("198.51.100.3", 600)]).await {
            assert_eq!(o.unwrap_err().retry, Retry::Soon);
        }
        let pid: i32 = std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The child may take a moment to be reaped by init; it must not be left running.
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z")
        });
        assert!(gone, "the wrapper's child {pid} outlived the timeout");
    });
}
