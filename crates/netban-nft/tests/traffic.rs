//! What a user notices: packets from a banned source are dropped, and pass again after the
//! unban or when the kernel lifts the ban at its end. Real nftables, `ip` and `ping`, each
//! test in its own network namespace, where both ends of the ping are addresses on `lo`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use netban_testsupport::netns;

#[test]
fn packets_from_a_banned_source_are_dropped_and_pass_after_unban() {
    netns::block_on(|ns| async move {
        for a in ["198.51.100.7", "2001:db8::7"] {
            ns.add_address(a);
        }
        assert!(
            ns.ping("198.51.100.7", "127.0.0.1"),
            "passes before the ban"
        );
        assert!(ns.ping("2001:db8::7", "::1"));
        let sink = sink("");
        apply_ok(&sink, &[ban("198.51.100.7", 600), ban("2001:db8::7", 600)]).await;
        assert!(
            !ns.ping("198.51.100.7", "127.0.0.1"),
            "dropped while banned"
        );
        assert!(!ns.ping("2001:db8::7", "::1"));
        assert!(ns.ping("127.0.0.1", "127.0.0.1"), "other sources pass");
        apply_ok(&sink, &[unban("198.51.100.7"), unban("2001:db8::7")]).await;
        assert!(
            ns.ping("198.51.100.7", "127.0.0.1"),
            "passes after the unban"
        );
        assert!(ns.ping("2001:db8::7", "::1"));
    });
}

#[test]
fn a_banned_network_drops_every_host_in_it() {
    netns::block_on(|ns| async move {
        for a in [
            "198.51.100.7",
            "198.51.100.200",
            "192.0.2.1",
            "2001:db8:5::9",
        ] {
            ns.add_address(a);
        }
        let sink = sink("");
        apply_ok(
            &sink,
            &[ban("198.51.100.0/24", 600), ban("2001:db8:5::/48", 600)],
        )
        .await;
        assert!(!ns.ping("198.51.100.7", "127.0.0.1"));
        assert!(!ns.ping("198.51.100.200", "127.0.0.1"));
        assert!(!ns.ping("2001:db8:5::9", "::1"));
        assert!(ns.ping("192.0.2.1", "127.0.0.1"), "outside the network");
    });
}

#[test]
fn the_kernel_lifts_a_ban_at_its_end_without_netban() {
    netns::block_on(|ns| async move {
        ns.add_address("198.51.100.7");
        {
            let sink = sink("");
            apply_ok(&sink, &[ban("198.51.100.7", 2)]).await;
        } // netban is gone.
        assert!(
            !ns.ping("198.51.100.7", "127.0.0.1"),
            "dropped while banned"
        );
        let started = Instant::now();
        while !ns.ping("198.51.100.7", "127.0.0.1") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the ban ends on its own"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(ns.values(TABLE, "hosts4").is_empty());
    });
}
