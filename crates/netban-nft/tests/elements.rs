//! Bans as set elements, against the real nftables (Debian's nft, this machine's kernel), each
//! test in its own network namespace: what `nft list` shows after netban's batches.

mod common;

use std::time::{Duration, Instant};

use common::*;
use netban_testsupport::netns;

#[test]
fn bans_appear_with_their_lease_timeouts_and_unbans_remove_them() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(
            &sink,
            &[
                ban("198.51.100.3", 600),
                ban("2001:db8::3", 3600),
                ban("203.0.113.0/24", 900),
                ban("2001:db8:1::/48", 1200),
            ],
        )
        .await;
        let hosts4 = ns.elements(TABLE, "hosts4").expect("hosts4 exists");
        assert_eq!(hosts4.len(), 1);
        assert_eq!(hosts4[0].value, "198.51.100.3");
        assert_timeout(hosts4[0].timeout, 600);
        let comment = hosts4[0].comment.as_deref().expect("comment");
        assert!(
            comment.starts_with(&format!("{MARK} until="))
                && comment.ends_with(" jail=sshd origin=local"),
            "{comment}"
        );
        let hosts6 = ns.elements(TABLE, "hosts6").expect("hosts6 exists");
        assert_eq!(hosts6[0].value, "2001:db8::3");
        assert_timeout(hosts6[0].timeout, 3600);
        let nets4 = ns.elements(TABLE, "nets4_24").expect("nets4_24 exists");
        assert_eq!(nets4[0].value, "203.0.113.0/24");
        assert_timeout(nets4[0].timeout, 900);
        let nets6 = ns.elements(TABLE, "nets6_48").expect("nets6_48 exists");
        assert_eq!(nets6[0].value, "2001:db8:1::/48");
        assert_timeout(nets6[0].timeout, 1200);

        apply_ok(
            &sink,
            &[
                unban("198.51.100.3"),
                unban("2001:db8::3"),
                unban("203.0.113.0/24"),
                unban("2001:db8:1::/48"),
            ],
        )
        .await;
        for set in ["hosts4", "hosts6", "nets4_24", "nets6_48"] {
            assert_eq!(
                ns.values(TABLE, set),
                Vec::<String>::new(),
                "{set} is empty"
            );
        }
    });
}

#[test]
fn permanent_bans_have_no_timeout() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(
            &sink,
            &[ban_forever("198.51.100.9"), ban_forever("2001:db8::/64")],
        )
        .await;
        let e = &ns.elements(TABLE, "hosts4").unwrap()[0];
        assert_eq!(
            (e.value.as_str(), e.timeout, e.expires),
            ("198.51.100.9", None, None)
        );
        assert!(e.comment.as_deref().unwrap().contains(" permanent "));
        let e = &ns.elements(TABLE, "nets6_64").unwrap()[0];
        assert_eq!((e.value.as_str(), e.timeout), ("2001:db8::/64", None));
        let held = sink.held_entries(deadline()).await.unwrap();
        assert!(held.iter().all(|h| h.expires.is_none()), "{held:?}");
    });
}

#[test]
fn an_extend_gives_the_element_its_new_timeout_and_comment() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(
            &sink,
            &[ban("198.51.100.3", 600), ban("203.0.113.0/28", 600)],
        )
        .await;
        apply_ok(
            &sink,
            &[
                extend("198.51.100.3", "hosts4", 7200),
                extend("203.0.113.0/28", "nets4_28", 7200),
            ],
        )
        .await;
        for set in ["hosts4", "nets4_28"] {
            let e = ns.elements(TABLE, set).unwrap();
            assert_eq!(e.len(), 1, "{set}: still one element");
            assert_timeout(e[0].timeout, 7200);
            let until = now() + 7200;
            let comment = e[0].comment.clone().unwrap();
            let written: i64 = comment.split("until=").nth(1).unwrap()[..10]
                .parse()
                .unwrap();
            assert!(
                (written - until).abs() <= 2,
                "comment {comment} names the new end"
            );
        }
        // Shortening works the same way (a lease ended early, another one is left).
        apply_ok(&sink, &[extend("198.51.100.3", "hosts4", 60)]).await;
        assert_timeout(ns.elements(TABLE, "hosts4").unwrap()[0].timeout, 60);
    });
}

#[test]
fn a_host_inside_a_banned_network_and_a_network_containing_banned_hosts_are_all_kept() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        // The host and the /28 first, then the /24 holding both, then a /16 over it all.
        apply_ok(
            &sink,
            &[ban("203.0.113.7", 600), ban("203.0.113.0/28", 700)],
        )
        .await;
        apply_ok(
            &sink,
            &[ban("203.0.113.0/24", 800), ban("203.0.0.0/16", 900)],
        )
        .await;
        // And a host banned after its network.
        apply_ok(&sink, &[ban("203.0.113.200", 1000)]).await;
        assert_eq!(ns.values(TABLE, "hosts4"), ["203.0.113.200", "203.0.113.7"]);
        assert_eq!(ns.values(TABLE, "nets4_28"), ["203.0.113.0/28"]);
        assert_eq!(ns.values(TABLE, "nets4_24"), ["203.0.113.0/24"]);
        assert_eq!(ns.values(TABLE, "nets4_16"), ["203.0.0.0/16"]);
        // Each keeps its own timeout: lifting the /24 leaves the rest in place.
        apply_ok(&sink, &[unban("203.0.113.0/24")]).await;
        assert_eq!(ns.values(TABLE, "nets4_24"), Vec::<String>::new());
        assert_eq!(ns.values(TABLE, "nets4_28"), ["203.0.113.0/28"]);
        assert_eq!(ns.values(TABLE, "hosts4").len(), 2);
        assert_timeout(ns.elements(TABLE, "nets4_16").unwrap()[0].timeout, 900);
    });
}

#[test]
fn an_element_already_there_or_already_gone_is_no_error() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(&sink, &[ban("198.51.100.3", 600)]).await;
        // Banned again (a restored ban), in a batch with the same target twice.
        apply_ok(&sink, &[ban("198.51.100.3", 600), ban("198.51.100.3", 900)]).await;
        let e = ns.elements(TABLE, "hosts4").unwrap();
        assert_eq!(e.len(), 1);
        assert_timeout(e[0].timeout, 900);
        // Unbanned twice, and unbanning what was never banned.
        apply_ok(&sink, &[unban("198.51.100.3")]).await;
        apply_ok(
            &sink,
            &[
                unban("198.51.100.3"),
                unban("192.0.2.1"),
                unban("2001:db8::/32"),
            ],
        )
        .await;
        assert_eq!(ns.values(TABLE, "hosts4"), Vec::<String>::new());
    });
}

#[test]
fn an_element_the_kernel_already_expired_does_not_fail_the_batch() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        apply_ok(&sink, &[ban("198.51.100.3", 1), ban("203.0.113.0/24", 1)]).await;
        let started = Instant::now();
        while !(ns.values(TABLE, "hosts4").is_empty() && ns.values(TABLE, "nets4_24").is_empty()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the kernel expires the elements"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A late unban of the expired ones, in a batch with a new ban: all of it succeeds.
        apply_ok(
            &sink,
            &[
                unban("198.51.100.3"),
                unban("203.0.113.0/24"),
                ban("198.51.100.4", 600),
            ],
        )
        .await;
        assert_eq!(ns.values(TABLE, "hosts4"), ["198.51.100.4"]);
        // And an extend of an expired one puts it back.
        apply_ok(&sink, &[extend("203.0.113.0/24", "nets4_24", 600)]).await;
        assert_eq!(ns.values(TABLE, "nets4_24"), ["203.0.113.0/24"]);
    });
}

#[test]
fn a_batch_of_5000_targets_is_one_transaction() {
    netns::block_on(|ns| async move {
        let sink = sink("");
        // The first batch also makes the table; count from the second.
        apply_ok(&sink, &[ban("192.0.2.1", 600)]).await;
        let monitor = ns.monitor();
        let mut changes = Vec::new();
        for i in 0..4000u32 {
            changes.push(ban(
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                3600,
            ));
        }
        for i in 0..900u32 {
            changes.push(ban(&format!("2001:db8::{i:x}"), 3600));
        }
        for i in 0..100u32 {
            changes.push(ban(&format!("100.64.{i}.0/24"), 3600));
        }
        let started = Instant::now();
        apply_ok(&sink, &changes).await;
        let took = started.elapsed();
        assert_eq!(
            monitor.wait_generations(1),
            1,
            "one transaction for 5,000 targets"
        );
        assert_eq!(ns.values(TABLE, "hosts4").len(), 4001);
        assert_eq!(ns.values(TABLE, "hosts6").len(), 900);
        assert_eq!(ns.values(TABLE, "nets4_24").len(), 100);
        assert!(took < Duration::from_secs(10), "5,000 bans took {took:?}");

        let unbans: Vec<_> = changes
            .iter()
            .map(|c| unban(&c.target().to_string()))
            .collect();
        apply_ok(&sink, &unbans).await;
        assert_eq!(
            monitor.wait_generations(2),
            2,
            "and one for the 5,000 unbans"
        );
        assert_eq!(ns.values(TABLE, "hosts4"), ["192.0.2.1"]);
        assert!(ns.values(TABLE, "nets4_24").is_empty());
    });
}

#[test]
fn a_dry_run_shows_the_transaction_a_change_would_be() {
    // No kernel needed: describing sends nothing.
    let sink = sink("");
    let add = netban_core::Sink::describe(&sink, &ban("198.51.100.7", 600));
    assert!(add.contains("nft -j -f - with {\"nftables\":["), "{add}");
    assert!(add.contains("\"198.51.100.7\""), "{add}");
    assert!(
        add.contains("\"timeout\":"),
        "a ban carries its timeout: {add}"
    );
    assert!(add.contains("\"name\":\"hosts4\""), "{add}");
    assert!(add.contains("jail=sshd"), "the mark's comment: {add}");
    let net = netban_core::Sink::describe(&sink, &ban("2001:db8:7::/48", 600));
    assert!(net.contains("2001:db8:7::") && net.contains("48"), "{net}");
    let remove = netban_core::Sink::describe(&sink, &unban("198.51.100.7"));
    assert!(remove.contains("delete"), "{remove}");
    assert!(!remove.contains("\"timeout\":"), "{remove}");
}
