//! The netconfd harness itself: the facts its module documentation states, checked against
//! the real netconfd behind the real sshd.

use netban_testsupport::netconf_client::{Entry, ensure_ok};
use netban_testsupport::netconfd::{Netconfd, NetconfdOptions, Target};

#[test]
fn starts_and_reads_and_edits_behind_netbans_back() {
    let nc = Netconfd::start().expect("netconfd starts");
    assert!(nc.is_running());
    assert!(nc.host_key_fingerprint().starts_with("SHA256:"));
    assert!(nc.running().is_empty());
    assert_eq!(nc.commits(), 0);

    nc.add_entry("192.0.2.1/32", Some("by hand & <care>"));
    assert_eq!(
        nc.running(),
        vec![Entry {
            prefix: "192.0.2.1/32".into(),
            comment: Some("by hand & <care>".into())
        }]
    );
    assert_eq!(nc.commits(), 1);
    nc.add_entry("192.0.2.2/32", None);
    assert_eq!(nc.commits(), 2);
    nc.delete_entry("192.0.2.1/32");
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.2/32"]);
    assert_eq!(nc.commits(), 3);

    // The candidate differs from running only until commit.
    let mut s = nc.client().open().unwrap();
    let r = s
        .rpc(r#"<edit-config><target><candidate/></target><config><blocklist xmlns="urn:example:blocklist"><entry><prefix>192.0.2.3/32</prefix></entry></blocklist></config></edit-config>"#)
        .unwrap();
    ensure_ok("edit-config", &r).unwrap();
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.2/32"]);
    // The candidate is shared: another session sees the uncommitted entry.
    assert_eq!(nc.candidate().len(), 2);
    ensure_ok("discard", &s.rpc("<discard-changes/>").unwrap()).unwrap();
    drop(s);
    assert_eq!(nc.candidate().len(), 1);
}

#[test]
fn the_device_refuses_test_net_2_and_keeps_its_config_over_a_restart() {
    let nc = Netconfd::start().expect("netconfd starts");
    let e = nc.client().add("198.51.100.7/32", None).unwrap_err();
    assert!(format!("{e:#}").contains("must-violation"), "{e:#}");
    nc.add_entry("203.0.113.0/24", None);
    nc.stop();
    assert!(!nc.is_running());
    assert!(nc.client().entries("running").is_err());
    nc.start_again().expect("starts again");
    assert_eq!(nc.running_prefixes(), vec!["203.0.113.0/24"]);
}

#[test]
fn running_target_has_no_candidate() {
    let nc = Netconfd::start_with(NetconfdOptions {
        target: Target::Running,
    })
    .expect("netconfd starts");
    nc.add_entry("192.0.2.9/32", None);
    assert_eq!(nc.running_prefixes(), vec!["192.0.2.9/32"]);
    assert_eq!(nc.commits(), 1);
}

/// A session that goes away releases its lock at once, and its uncommitted edit is discarded.
#[test]
fn a_lock_ends_with_its_session() {
    let nc = Netconfd::start().expect("netconfd starts");
    let mut a = nc.client().open().unwrap();
    ensure_ok(
        "lock",
        &a.rpc("<lock><target><candidate/></target></lock>").unwrap(),
    )
    .unwrap();
    let mut b = nc.client().open().unwrap();
    let r = b.rpc("<lock><target><candidate/></target></lock>").unwrap();
    assert!(r.contains("lock-denied"), "{r}");
    drop(a);
    let began = std::time::Instant::now();
    loop {
        let r = b.rpc("<lock><target><candidate/></target></lock>").unwrap();
        if r.contains("<ok/>") {
            break;
        }
        assert!(began.elapsed().as_secs() < 20, "{r}\n{}", nc.log_tail(30));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The session's uncommitted edit went with it.
    assert!(nc.candidate().is_empty(), "{:?}", nc.candidate());
    assert!(nc.running().is_empty());
}
