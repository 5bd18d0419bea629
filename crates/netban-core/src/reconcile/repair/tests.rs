use super::*;
use crate::lease::Until;

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn lease() -> LeaseInfo {
    LeaseInfo {
        jail: "sshd".into(),
        origin: "local".into(),
        bantime: 60,
        until: None,
    }
}

fn desired(ts: &[&str]) -> BTreeMap<Target, Desired> {
    ts.iter()
        .map(|s| {
            (
                t(s),
                Desired {
                    target: t(s),
                    until: Until::Never,
                    lease: lease(),
                    origins: 1,
                },
            )
        })
        .collect()
}

fn entry(ip: &str, id: &str, owner: Owner) -> HeldEntry {
    HeldEntry {
        target: t(ip),
        remote_id: Some(id.into()),
        expires: Some(5000),
        owner,
        not_enforced: None,
    }
}

fn rec(ip: &str, id: &str) -> SinkRecord {
    let mut r = SinkRecord::held("s", t(ip), lease(), 1);
    r.remote_id = Some(id.into());
    r.expires = Some(5000);
    r
}

fn policy() -> Ownership {
    Ownership {
        host_id: "web-01".into(),
        ..Ownership::default()
    }
}

#[test]
fn vanished_entries_are_forgotten_and_duplicates_removed() {
    let r = repair(
        "s",
        &desired(&["192.0.2.1", "192.0.2.2"]),
        &[rec("192.0.2.1", "1"), rec("192.0.2.2", "2")],
        &[
            entry("192.0.2.1", "1", Owner::This),
            entry("192.0.2.1", "9", Owner::This),
        ],
        &policy(),
        false,
        100,
    );
    assert_eq!(r.forget, [t("192.0.2.2")]);
    assert!(matches!(
        &r.steps[..],
        [Step::Remove { remote_id: Some(id), duplicate: true, .. }] if id == "9"
    ));
}

#[test]
fn a_lost_state_adopts_what_is_banned_and_keeps_the_rest_never_removing_it() {
    // Issue 6: a wiped state used to delete every rule carrying this host's mark.
    let listed = [
        entry("192.0.2.1", "1", Owner::This),
        entry("192.0.2.2", "2", Owner::Host("web-01".into())),
        entry("192.0.2.3", "3", Owner::Host("web-01".into())),
        entry("192.0.2.4", "4", Owner::Host("web-02".into())),
        entry("192.0.2.5", "5", Owner::Foreign),
    ];
    let r = repair(
        "s",
        &desired(&["192.0.2.2"]),
        &[],
        &listed,
        &policy(),
        false,
        100,
    );
    assert!(r.steps.is_empty(), "nothing is removed: {:?}", r.steps);
    assert_eq!(r.record.len(), 1);
    assert!(r.record[0].adopted && r.record[0].target == t("192.0.2.2"));
    let kept: Vec<_> = r.kept.iter().map(|k| k.target).collect();
    assert_eq!(
        kept,
        [t("192.0.2.1"), t("192.0.2.3")],
        "another host's and foreign entries are not even noted"
    );
}

#[test]
fn the_other_hubs_entries_are_adopted_and_removed_like_its_own() {
    let mut p = policy();
    p.removable.insert("hub-b".into());
    let listed = [
        entry("192.0.2.1", "1", Owner::Host("hub-b".into())),
        entry("192.0.2.2", "2", Owner::Host("hub-b".into())),
    ];
    let r = repair("s", &desired(&["192.0.2.1"]), &[], &listed, &p, false, 100);
    assert_eq!(r.record.len(), 1);
    assert!(
        matches!(&r.steps[..], [Step::Remove { target, adopted: true, .. }] if *target == t("192.0.2.2"))
    );
}

#[test]
fn an_unconfirmed_add_learns_its_id() {
    let mut adding = rec("192.0.2.1", "x");
    adding.state = RecordState::Adding;
    adding.remote_id = None;
    let r = repair(
        "s",
        &BTreeMap::new(),
        &[adding],
        &[entry("192.0.2.1", "1", Owner::This)],
        &policy(),
        false,
        100,
    );
    assert_eq!(r.record[0].remote_id.as_deref(), Some("1"));
    assert!(r.kept.is_empty());
}

#[test]
fn a_kernel_expiry_is_not_drift() {
    let mut r0 = rec("192.0.2.1", "1");
    r0.expires = Some(50);
    let r = repair("s", &BTreeMap::new(), &[r0], &[], &policy(), true, 100);
    assert_eq!((r.forget.len(), r.repaired), (1, 0));
}
