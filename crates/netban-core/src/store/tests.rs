use super::*;
use crate::lease::{Lease, Origin, Until};
use crate::outbox::{Cause, Consumer, EventKind};
use crate::sink::LeaseInfo;
use crate::target::Target;
use std::os::unix::fs::PermissionsExt;

fn lease(t: &str, jail: &str, until: Until) -> Lease {
    Lease {
        target: Target::parse(t).unwrap(),
        jail: jail.into(),
        origin: Origin::Local,
        until,
        bantime: 600,
        since: 100,
    }
}

fn ban() -> LeaseFacts {
    LeaseFacts::cause(Cause::Ban)
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

#[test]
fn database_is_private_and_leases_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dmode = std::fs::metadata(dir.path().join("state"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dmode, 0o700);
    assert_eq!(
        store
            .upsert_lease(&lease("192.0.2.1", "sshd", Until::At(1000)), &ban(), 1)
            .unwrap(),
        LeaseChange::New
    );
    assert_eq!(
        store
            .upsert_lease(&lease("192.0.2.1", "sshd", Until::At(2000)), &ban(), 1)
            .unwrap(),
        LeaseChange::Changed {
            prev: Until::At(1000)
        }
    );
    store
        .upsert_lease(&lease("192.0.2.1", "postfix", Until::Never), &ban(), 1)
        .unwrap();
    assert_eq!(store.live_leases(1500, None).unwrap().len(), 2);
    assert_eq!(
        store.live_leases(1500, Some("sshd")).unwrap()[0].until,
        Until::At(2000)
    );
    let ended = store
        .end_leases(
            &t("192.0.2.1"),
            Some("sshd"),
            Some(&Origin::Local),
            &LeaseFacts::cause(Cause::Unban),
            5,
        )
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert!(
        store
            .end_leases(
                &t("192.0.2.1"),
                Some("sshd"),
                Some(&Origin::Local),
                &LeaseFacts::cause(Cause::Unban),
                5
            )
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.live_leases(0, None).unwrap().len(), 1);
}

#[test]
fn every_lease_change_appends_its_event_and_a_restore_that_changes_nothing_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let l = lease("192.0.2.1", "sshd", Until::At(1000));
    store.upsert_lease(&l, &ban(), 10).unwrap();
    // The same lease again (a fail2ban restart's restore): no event.
    let restore = LeaseFacts::cause(Cause::Restore);
    assert_eq!(
        store.upsert_lease(&l, &restore, 11).unwrap(),
        LeaseChange::Same
    );
    let mut longer = l.clone();
    longer.until = Until::At(2000);
    store.upsert_lease(&longer, &ban(), 12).unwrap();
    store
        .end_leases(
            &l.target,
            None,
            Some(&Origin::Local),
            &LeaseFacts::cause(Cause::Unban),
            13,
        )
        .unwrap();
    let events = store.events_after(0, 100).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.cause, e.at)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Start, Cause::Ban, 10),
            (EventKind::Extend, Cause::Ban, 12),
            (EventKind::End, Cause::Unban, 13)
        ]
    );
    assert!(events[0].counts_as_ban());
    assert!(!events[1].counts_as_ban());
    // Consumers keep their own cursors, which never move back.
    let c = Consumer::new("stats");
    assert_eq!(c.next(&store, 2).unwrap().len(), 2);
    c.commit(&store, events[1].id).unwrap();
    c.commit(&store, events[0].id).unwrap();
    assert_eq!(c.next(&store, 10).unwrap(), events[2..].to_vec());
    assert_eq!(c.lag(&store).unwrap(), 1);
    assert_eq!(Consumer::new("cluster").lag(&store).unwrap(), 3);
}

#[test]
fn expired_leases_are_purged_with_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .upsert_lease(&lease("192.0.2.1", "sshd", Until::At(100)), &ban(), 1)
        .unwrap();
    store
        .upsert_lease(&lease("192.0.2.2", "sshd", Until::Never), &ban(), 1)
        .unwrap();
    assert_eq!(store.purge_expired(100).unwrap().len(), 1);
    assert_eq!(store.lease_count().unwrap(), 1);
    let last = store.events_after(2, 10).unwrap();
    assert_eq!(
        (last[0].kind, last[0].cause),
        (EventKind::End, Cause::Expired)
    );
    assert!(store.purge_expired(100).unwrap().is_empty());
}

#[test]
fn pruning_waits_for_every_consumer_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..5 {
        store
            .upsert_lease(
                &lease(&format!("192.0.2.{i}"), "sshd", Until::Never),
                &ban(),
                10 + i,
            )
            .unwrap();
    }
    Consumer::new("stats").commit(&store, 3).unwrap();
    // The cluster has read nothing: nothing goes.
    assert_eq!(
        store
            .prune_events(&["stats", "cluster"], 1000, 100)
            .unwrap(),
        0
    );
    // Read by stats, old enough: the first three go.
    assert_eq!(store.prune_events(&["stats"], 1000, 100).unwrap(), 3);
    // Newer than the history: kept whatever the cursors.
    Consumer::new("stats").commit(&store, 5).unwrap();
    assert_eq!(store.prune_events(&["stats"], 0, 100).unwrap(), 0);
    // The hard cap wins over an unread consumer.
    assert_eq!(store.prune_events(&["cluster"], 0, 1).unwrap(), 1);
    assert_eq!(store.events_after(0, 10).unwrap().len(), 1);
}

#[test]
fn reopening_keeps_state_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    first
        .upsert_lease(&lease("2001:db8::1", "sshd", Until::Never), &ban(), 1)
        .unwrap();
    let instance = first.instance().to_string();
    assert_eq!(instance.len(), 12);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.live_leases(0, None).unwrap().len(), 1);
    assert_eq!(store.instance(), instance);
    // A new state is a new identity.
    let other = tempfile::tempdir().unwrap();
    assert_ne!(Store::open(other.path()).unwrap().instance(), instance);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let p = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let store = Store::open(&p).unwrap();
                for j in 0..50 {
                    store
                        .upsert_lease(
                            &lease(
                                &format!("198.51.100.{j}"),
                                &format!("jail{i}"),
                                Until::At(9999),
                            ),
                            &ban(),
                            1,
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.lease_count().unwrap(), 400);
    assert_eq!(store.events_after(0, 1000).unwrap().len(), 400);
}

fn held(sink: &str, t: &str) -> SinkRecord {
    SinkRecord::held(
        sink,
        Target::parse(t).unwrap(),
        LeaseInfo {
            jail: "sshd".into(),
            origin: "local".into(),
            bantime: 600,
            until: None,
        },
        1,
    )
}

#[test]
fn pending_targets_are_what_no_sink_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .upsert_lease(&lease("192.0.2.1", "sshd", Until::Never), &ban(), 1)
        .unwrap();
    store
        .upsert_lease(&lease("192.0.2.2", "sshd", Until::Never), &ban(), 1)
        .unwrap();
    store.record_held(&held("s", "192.0.2.1")).unwrap();
    store.record_held(&held("s", "192.0.2.9")).unwrap();
    let mut got: Vec<String> = store
        .pending_targets(5, 10)
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    got.sort();
    // 192.0.2.2 was never delivered; 192.0.2.9 has no lease left; 192.0.2.1 is settled.
    assert_eq!(got, ["192.0.2.2/32", "192.0.2.9/32"]);
    assert_eq!(store.pending_targets(5, 1).unwrap().len(), 1);
}

#[test]
fn failures_count_attempts_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let lease = held("s", "192.0.2.1").lease;
    let fail = RecordOp::Failed {
        target: t("192.0.2.1"),
        lease: lease.clone(),
        error: "down".into(),
        retry: crate::sink::Retry::Soon,
    };
    let delay = |_: crate::sink::Retry, a: i64| a * 10;
    assert_eq!(
        store
            .apply_record_ops("s", std::slice::from_ref(&fail), &delay, 100)
            .unwrap(),
        [1]
    );
    assert_eq!(
        store.apply_record_ops("s", &[fail], &delay, 100).unwrap(),
        [2]
    );
    let r = &store.records("s").unwrap()[0];
    assert_eq!(
        (r.state, r.attempts, r.next_try),
        (RecordState::Adding, 2, 120)
    );
    assert_eq!(store.next_due(100).unwrap(), Some(120));
    store
        .apply_record_ops("s", &[RecordOp::Held(held("s", "192.0.2.1"))], &delay, 100)
        .unwrap();
    assert_eq!(store.records("s").unwrap()[0].attempts, 0);
}

#[test]
fn a_state_dir_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Store::open(&state).err().unwrap().to_string();
    assert!(
        e.contains("writable by group or others") && e.contains("chmod 700"),
        "{e}"
    );
}

#[test]
fn a_symlinked_database_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, state.join("netban.db")).unwrap();
    assert!(Store::open(&state).is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_corrupt_database_names_its_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("netban.db"), vec![b'x'; 8192]).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let e = Store::open(dir.path()).err().unwrap().to_string();
    assert!(
        e.contains("netban.db") && e.contains("damaged") && e.contains("mv "),
        "{e}"
    );
}

#[test]
fn refusals_and_kept_entries_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .record_refusal(&t("127.0.0.1"), "sshd", "local", "loopback", 5)
        .unwrap();
    store
        .record_refusal(&t("127.0.0.1"), "sshd", "local", "loopback", 6)
        .unwrap();
    let r = store.refusals(Some(&t("127.0.0.1")), 10).unwrap();
    assert_eq!((r.len(), r[0].count, r[0].first, r[0].last), (1, 2, 5, 6));
    assert_eq!(store.counter("guard_refusals").unwrap(), 2);
    let k = Kept {
        sink: "exafs".into(),
        target: t("192.0.2.7"),
        remote_id: Some("7".into()),
        owner: "not made by netban".into(),
        reason: "manual".into(),
        expires: Some(1000),
        noticed: 5,
    };
    assert!(store.note_kept(&k).unwrap());
    assert!(!store.note_kept(&k).unwrap(), "the same note is not new");
    assert_eq!(store.kept(None).unwrap(), std::slice::from_ref(&k));
    store
        .prune_kept("exafs", &[(t("192.0.2.7"), Some("7".into()))], 10)
        .unwrap();
    assert_eq!(store.kept(Some("exafs")).unwrap().len(), 1);
    store.prune_kept("exafs", &[], 10).unwrap();
    assert!(store.kept(None).unwrap().is_empty());
}
