//! The NETCONF sink against the real netconfd (Debian) behind a real OpenSSH sshd, started by
//! netban-testsupport: what a batch does to the device's running configuration, how a
//! rejected batch is isolated, and how netban tells its entries from everybody else's.

mod common;

use common::*;
use netban_core::sink::Owner;
use netban_core::sink::{Change, Retry, Sink};
use netban_testsupport::netconf_client::Entry;
use netban_testsupport::netconfd::{Netconfd, NetconfdOptions, Target};

#[tokio::test]
async fn bans_appear_in_running_after_commit_and_unbans_disappear() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    let out = sink
        .apply_batch(
            &[
                add("192.0.2.1"),
                add("2001:DB8::1"),
                add_jail("203.0.113.0/24", "a<b&c"),
            ],
            within(30),
        )
        .await;
    all_ok(&out);
    let running = nc.running();
    assert_eq!(
        running,
        vec![
            Entry {
                prefix: "192.0.2.1/32".into(),
                comment: Some(format!("{MARK} sshd"))
            },
            Entry {
                prefix: "2001:db8::1/128".into(),
                comment: Some(format!("{MARK} sshd"))
            },
            Entry {
                prefix: "203.0.113.0/24".into(),
                comment: Some(format!("{MARK} a<b&c"))
            },
        ],
        "canonical prefixes, the mark and the jail (escaped on the way, intact on the device)"
    );
    assert_eq!(nc.commits(), 1, "one batch, one commit");
    assert_eq!(nc.candidate(), running, "nothing left uncommitted");

    all_ok(&sink.apply_batch(&[remove("192.0.2.1")], within(30)).await);
    assert_eq!(
        nc.running_prefixes(),
        vec!["2001:db8::1/128", "203.0.113.0/24"]
    );
    assert_eq!(nc.commits(), 2);
}

#[tokio::test]
async fn a_thousand_changes_in_one_apply_make_one_commit() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    let ips = many(1000);
    let adds: Vec<Change> = ips.iter().map(|ip| add(ip)).collect();
    all_ok(&sink.apply_batch(&adds, within(120)).await);
    assert_eq!(nc.running().len(), 1000);
    assert_eq!(nc.commits(), 1);
    // Adds and removes mixed in one batch: still one commit.
    let mut mixed: Vec<Change> = ips[..500].iter().map(|ip| remove(ip)).collect();
    mixed.push(add("192.0.2.77"));
    all_ok(&sink.apply_batch(&mixed, within(120)).await);
    let running = nc.running_prefixes();
    assert_eq!(running.len(), 501);
    assert!(running.contains(&"192.0.2.77/32".to_string()));
    assert_eq!(nc.commits(), 2);
}

/// The engine's bisection, as the shared engine code will do it: halve a rejected batch.
async fn bisect(sink: &netban_netconf::NetconfSink, changes: &[Change], refused: &mut Vec<String>) {
    let out = sink.apply_batch(changes, within(30)).await;
    if out.iter().all(Result::is_ok) {
        return;
    }
    let msg = all_failed(&out, Retry::Later);
    if changes.len() == 1 {
        refused.push(msg);
        return;
    }
    let (a, b) = changes.split_at(changes.len() / 2);
    Box::pin(bisect(sink, a, refused)).await;
    Box::pin(bisect(sink, b, refused)).await;
}

#[tokio::test]
async fn a_refused_entry_rejects_the_batch_and_bisection_isolates_it() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    let batch = vec![
        add("192.0.2.1"),
        add("192.0.2.2"),
        add("198.51.100.7"), // the test device refuses 198.51.100.0/24 (a YANG must)
        add("192.0.2.3"),
        add("192.0.2.4"),
    ];
    let msg = all_failed(&sink.apply_batch(&batch, within(30)).await, Retry::Later);
    assert!(
        msg.starts_with("edge-1: the device rejected the batch of 5 changes"),
        "{msg}"
    );
    assert!(
        msg.contains("198.51.100.0/24 may not be blocked on this device"),
        "{msg}"
    );
    assert!(msg.contains("must-violation"), "{msg}");
    assert!(nc.running().is_empty(), "all or nothing");
    assert!(nc.candidate().is_empty(), "the failed edit was discarded");
    assert_eq!(nc.commits(), 0);

    let mut refused = Vec::new();
    bisect(&sink, &batch, &mut refused).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("edge-1: the device refused to add 198.51.100.7/32: "),
        "{}",
        refused[0]
    );
    assert_eq!(
        nc.running_prefixes(),
        vec![
            "192.0.2.1/32",
            "192.0.2.2/32",
            "192.0.2.3/32",
            "192.0.2.4/32"
        ]
    );
}

#[tokio::test]
async fn removing_what_is_already_gone_counts_as_done() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    all_ok(
        &sink
            .apply_batch(&[add("192.0.2.1"), add("192.0.2.2")], within(30))
            .await,
    );
    nc.delete_entry("192.0.2.1/32"); // an operator, behind netban's back
    let out = sink
        .apply_batch(
            &[
                remove("192.0.2.1"),
                remove("192.0.2.9"),
                remove("192.0.2.2"),
                add("192.0.2.3"),
            ],
            within(30),
        )
        .await;
    all_ok(&out);
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.3/32"]);
}

#[tokio::test]
async fn held_reports_owners_and_what_was_deleted_behind_netbans_back() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    let sink = sink(&nc);
    all_ok(
        &sink
            .apply_batch(&[add("192.0.2.1"), add("192.0.2.2")], within(30))
            .await,
    );
    nc.add_entry("192.0.2.50/32", Some("blocked by hand"));
    nc.add_entry("192.0.2.51/32", Some("netban:web-02:0a1b2c sshd"));
    nc.add_entry("192.0.2.5/24", Some(&format!("{MARK} sshd"))); // not canonical
    nc.delete_entry("192.0.2.2/32");

    let held = sink
        .list(within(30))
        .await
        .expect("lists")
        .expect("can list");
    let mut got: Vec<(String, Owner)> = held
        .iter()
        .map(|h| (h.target.to_string(), h.owner.clone()))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("192.0.2.0/24".into(), Owner::Foreign),
            ("192.0.2.1/32".into(), Owner::This),
            ("192.0.2.50/32".into(), Owner::Foreign),
            ("192.0.2.51/32".into(), Owner::Host("web-02".into())),
        ],
        "192.0.2.2/32 is missing: deleted behind netban's back"
    );
    // The trait's view is the same listing.
    let core = Sink::held(&sink, within(30)).await.unwrap().unwrap();
    assert_eq!(core.iter().filter(|h| h.owner == Owner::This).count(), 1);

    // Repair: the engine re-adds the missing entry.
    all_ok(&sink.apply_batch(&[add("192.0.2.2")], within(30)).await);
    assert!(nc.running_prefixes().contains(&"192.0.2.2/32".to_string()));
}

#[tokio::test]
async fn entries_netban_does_not_own_are_never_overwritten_nor_removed() {
    init_logs();
    let nc = Netconfd::start().expect("netconfd");
    nc.add_entry("192.0.2.50/32", Some("blocked by hand"));
    nc.add_entry("192.0.2.51/32", Some("netban:web-02:0a1b2c sshd"));
    let sink = sink(&nc);
    // The same targets banned by netban: the device already blocks them; netban leaves the
    // operator's and the other instance's entries as they are.
    all_ok(
        &sink
            .apply_batch(
                &[add("192.0.2.50"), add("192.0.2.51"), add("192.0.2.1")],
                within(30),
            )
            .await,
    );
    all_ok(
        &sink
            .apply_batch(&[remove("192.0.2.50"), remove("192.0.2.51")], within(30))
            .await,
    );
    assert_eq!(
        nc.running(),
        vec![
            Entry {
                prefix: "192.0.2.1/32".into(),
                comment: Some(format!("{MARK} sshd"))
            },
            Entry {
                prefix: "192.0.2.50/32".into(),
                comment: Some("blocked by hand".into())
            },
            Entry {
                prefix: "192.0.2.51/32".into(),
                comment: Some("netban:web-02:0a1b2c sshd".into())
            },
        ]
    );
}

#[tokio::test]
async fn running_datastore_without_candidate() {
    init_logs();
    let nc = Netconfd::start_with(NetconfdOptions {
        target: Target::Running,
    })
    .expect("netconfd");
    let mut c = config(&nc);
    // Candidate on a device without one: a clear error, retried slowly.
    let msg = all_failed(
        &sink_with(&c)
            .apply_batch(&[add("192.0.2.1")], within(30))
            .await,
        Retry::Later,
    );
    assert!(
        msg.contains("does not support the candidate datastore; set datastore = \"running\""),
        "{msg}"
    );
    c.datastore = netban_netconf::Datastore::Running;
    let sink = sink_with(&c);
    all_ok(
        &sink
            .apply_batch(&[add("192.0.2.1"), add("192.0.2.2")], within(30))
            .await,
    );
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.1/32", "192.0.2.2/32"]);
    let msg = all_failed(
        &sink
            .apply_batch(&[add("192.0.2.3"), add("198.51.100.1")], within(30))
            .await,
        Retry::Later,
    );
    assert!(msg.contains("rejected the batch of 2"), "{msg}");
    assert_eq!(
        nc.running_prefixes(),
        vec!["192.0.2.1/32", "192.0.2.2/32"],
        "rollback-on-error: a rejected edit of running changes nothing"
    );
    all_ok(&sink.apply_batch(&[remove("192.0.2.1")], within(30)).await);
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.2/32"]);
}
