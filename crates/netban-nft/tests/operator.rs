//! `create = false`: netban fills the sets of the operator's own ruleset and nothing else,
//! against the real nftables, each test in its own network namespace.

mod common;

use common::*;
use netban_core::sink::Owner;
use netban_core::sink::Retry;
use netban_testsupport::netns::{self, Netns};

/// An operator's ruleset like Debian's /etc/nftables.conf with blocklist sets added.
const RULESET: &str = r#"
table inet filter {
    set blocked4 { type ipv4_addr; flags timeout; }
    set blocked6 { type ipv6_addr; flags timeout; }
    set nets4 { type ipv4_addr; flags interval,timeout; }
    chain input {
        type filter hook input priority filter; policy accept;
        ip saddr @blocked4 drop
        ip6 saddr @blocked6 drop
        ip saddr @nets4 drop
    }
}
"#;

const OPERATOR: &str = "create = false\ntable = \"filter\"\nset_v4 = \"blocked4\"\nset_v6 = \"blocked6\"\nnet_set_v4 = \"nets4\"\n";

fn ruleset_text(ns: &Netns) -> String {
    ns.nft(&["list", "chain", "inet", "filter", "input"])
}

#[test]
fn create_false_with_a_missing_set_is_a_clear_error() {
    netns::block_on(|ns| async move {
        ns.load("table inet filter {\n  set blocked4 { type ipv4_addr; flags timeout; }\n}\n");
        let sink = sink(
            "create = false\ntable = \"filter\"\nset_v4 = \"blocked4\"\nset_v6 = \"blocked6\"\n",
        );
        let want = "fw: set blocked6 in table inet filter (set_v6) does not exist: define it in your ruleset (type ipv6_addr; flags timeout) or use create = true";
        let err = sink.check_sink(deadline()).await.unwrap_err();
        assert_eq!((err.retry, err.message.as_str()), (Retry::Later, want));
        let out = apply(&sink, &[ban("198.51.100.3", 600)]).await;
        assert_eq!(out[0].clone().unwrap_err().message, want);
        assert_eq!(ns.tables(), ["filter"], "nothing was created");
        assert!(ns.values("filter", "blocked4").is_empty());
    });
}

#[test]
fn a_set_without_timeouts_is_refused_by_check() {
    netns::block_on(|ns| async move {
        ns.load("table inet filter {\n  set blocked4 { type ipv4_addr; }\n}\n");
        let sink = sink("create = false\ntable = \"filter\"\nset_v4 = \"blocked4\"\n");
        let err = sink.check_sink(deadline()).await.unwrap_err();
        assert_eq!(
            err.message,
            "fw: set blocked4 in table inet filter (set_v4) has no 'flags timeout': netban's elements could not expire on their own; add timeout to the set's flags"
        );
    });
}

#[test]
fn create_false_fills_the_operators_sets_and_leaves_the_rest_alone() {
    netns::block_on(|ns| async move {
        ns.load(RULESET);
        ns.add_element("filter", "blocked4", "192.0.2.99 comment \"manual\"");
        ns.add_element(
            "filter",
            "blocked4",
            "192.0.2.98 comment \"netban:web-02:77 until=1 jail=sshd origin=local\"",
        );
        let before = ruleset_text(&ns);
        let sink = sink(OPERATOR);
        assert_eq!(
            sink.check_sink(deadline()).await.unwrap(),
            "sets blocked4, blocked6, nets4 of table inet filter are ready (flags timeout); netban only fills them (create = false)"
        );
        apply_ok(
            &sink,
            &[
                ban("198.51.100.3", 600),
                ban("2001:db8::3", 600),
                ban("203.0.113.0/24", 600),
            ],
        )
        .await;
        assert_eq!(
            ns.values("filter", "blocked4"),
            ["192.0.2.98", "192.0.2.99", "198.51.100.3"]
        );
        assert_eq!(ns.values("filter", "blocked6"), ["2001:db8::3"]);
        assert_eq!(ns.values("filter", "nets4"), ["203.0.113.0/24"]);
        assert_eq!(ns.tables(), ["filter"], "no table of netban's own");
        assert_eq!(
            ruleset_text(&ns),
            before,
            "the operator's chain is untouched"
        );

        let held = sink.held_entries(deadline()).await.unwrap();
        let owner = |ip: &str| {
            held.iter()
                .find(|h| h.target == t(ip))
                .map(|h| h.owner.clone())
        };
        assert_eq!(owner("198.51.100.3"), Some(Owner::This));
        assert_eq!(owner("203.0.113.0/24"), Some(Owner::This));
        assert_eq!(owner("192.0.2.99"), Some(Owner::Foreign));
        assert_eq!(owner("192.0.2.98"), Some(Owner::Host("web-02".into())));

        apply_ok(
            &sink,
            &[
                unban("198.51.100.3"),
                unban("203.0.113.0/24"),
                unban("203.0.113.0/24"),
            ],
        )
        .await;
        assert_eq!(
            ns.values("filter", "blocked4"),
            ["192.0.2.98", "192.0.2.99"]
        );
        assert!(ns.values("filter", "nets4").is_empty());
    });
}

#[test]
fn overlaps_in_an_operators_interval_set_are_settled_per_change() {
    netns::block_on(|ns| async move {
        // One interval set for hosts and networks, as some rulesets have.
        ns.load("table inet filter {\n  set all4 { type ipv4_addr; flags interval,timeout; }\n}\n");
        ns.add_element("filter", "all4", "198.51.100.0/24 comment \"manual\"");
        let sink =
            sink("create = false\ntable = \"filter\"\nset_v4 = \"all4\"\nnet_set_v4 = \"all4\"\n");
        apply_ok(&sink, &[ban("203.0.113.0/28", 600)]).await;
        let out = apply(
            &sink,
            &[
                // Inside the operator's /24: it is blocked already, nothing to add.
                ban("198.51.100.7", 600),
                // Holds netban's /28: the kernel would refuse it.
                ban("203.0.113.0/24", 600),
                // Unrelated: applied, although its neighbour was refused.
                ban("192.0.2.1", 600),
                // The same network twice in one set: fine.
                ban("203.0.113.0/28", 900),
            ],
        )
        .await;
        assert!(out[0].is_ok(), "{:?}", out[0]);
        let err = out[1].clone().unwrap_err();
        assert_eq!(err.retry, Retry::Later);
        assert_eq!(
            err.message,
            "fw: 203.0.113.0/24 overlaps 203.0.113.0/28 in set all4 of table inet filter, and the kernel refuses overlapping intervals; remove 203.0.113.0/28 from the set, or let netban keep its own table (create = true), which keeps one set per prefix length"
        );
        assert!(out[2].is_ok() && out[3].is_ok(), "{out:?}");
        assert_eq!(
            ns.values("filter", "all4"),
            ["192.0.2.1", "198.51.100.0/24", "203.0.113.0/28"]
        );
        let e = ns.elements("filter", "all4").unwrap();
        let slash28 = e.iter().find(|e| e.value == "203.0.113.0/28").unwrap();
        assert_timeout(slash28.timeout, 900);
    });
}

#[test]
fn a_ban_and_unban_of_an_address_the_operator_blocked_leave_the_operators_element() {
    netns::block_on(|ns| async move {
        ns.load(RULESET);
        ns.add_element("filter", "blocked4", "192.0.2.99 comment \"manual\"");
        let sink = sink(OPERATOR);
        apply_ok(&sink, &[ban("192.0.2.99", 600)]).await;
        apply_ok(&sink, &[unban("192.0.2.99")]).await;
        let e = ns.elements("filter", "blocked4").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].timeout, e[0].comment.as_deref()),
            (None, Some("manual"))
        );
        // netban's own element of a previous ban is replaced and removed as usual.
        apply_ok(&sink, &[ban("192.0.2.50", 600)]).await;
        apply_ok(&sink, &[extend("192.0.2.50", "blocked4", 1200)]).await;
        let e = ns.elements("filter", "blocked4").unwrap();
        let ours = e.iter().find(|e| e.value == "192.0.2.50").unwrap();
        assert_timeout(ours.timeout, 1200);
        apply_ok(&sink, &[unban("192.0.2.50")]).await;
        assert_eq!(ns.values("filter", "blocked4"), ["192.0.2.99"]);
    });
}
