//! A batch of peer changes does what the same single calls do, in one transaction: the same
//! outcomes, leases, outbox events and refusals; and a batch that fails changes nothing.

use super::*;
use crate::config::GuardConfig;
use crate::store::{Batch, StoreError};

const NOW: i64 = 1_000_000;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("state")).unwrap();
    (dir, s)
}

fn guard() -> Guard {
    Guard::new(
        &GuardConfig {
            protect_own_addresses: false,
            ..GuardConfig::default()
        },
        None,
    )
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn start(ip: &str, peer: &str, until: i64) -> PeerOp {
    PeerOp::Start(BanRequest {
        target: t(ip),
        jail: "sshd".into(),
        origin: Origin::Peer(peer.into()),
        until: Until::At(until),
        bantime: 3600,
        since: NOW - 10,
        facts: LeaseFacts::cause(Cause::Peer),
    })
}

fn end(ip: &str, peer: &str) -> PeerOp {
    PeerOp::End {
        target: t(ip),
        jail: "sshd".into(),
        peer: peer.into(),
    }
}

/// One of everything, several touching the same lease, so that each item must see what the
/// ones before it did.
fn ops() -> Vec<PeerOp> {
    vec![
        start("192.0.2.1", "web-02", NOW + 3600),
        start("192.0.2.1", "web-02", NOW + 3600),
        start("192.0.2.1", "web-02", NOW + 7200),
        start("127.0.0.1", "web-02", NOW + 3600),
        start("192.0.2.9", "web-02", NOW - 1),
        start("192.0.2.2", "web-02", NOW + 3600),
        start("192.0.2.2", "web-03", NOW + 3600),
        start("192.0.2.3", "web-03", NOW + 3600),
        end("192.0.2.1", "web-02"),
        end("192.0.2.1", "web-02"),
        end("192.0.2.3", "web-02"),
        PeerOp::Revoke {
            target: t("192.0.2.2"),
            by: "web-03".into(),
        },
    ]
}

fn single(store: &Store, op: &PeerOp) -> Admitted {
    let g = guard();
    match op {
        PeerOp::Start(req) => Admitted::Ban(admit_peer(store, &g, req, NOW).unwrap()),
        PeerOp::End { target, jail, peer } => {
            Admitted::Ended(end_peer(store, target, jail, peer, NOW).unwrap())
        }
        PeerOp::Revoke { target, by } => Admitted::Ended(revoke(store, target, by, NOW).unwrap()),
    }
}

/// What a user of the state sees: leases, events, refusals.
fn picture(s: &Store) -> (Vec<Lease>, Vec<String>, Vec<String>, i64) {
    let events = s
        .events_after(0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{} {} {} {} {} {:?} {}",
                e.id,
                e.kind.as_str(),
                e.target,
                e.jail,
                e.origin,
                e.until,
                e.cause.as_str()
            )
        })
        .collect();
    let refusals = s
        .refusals(None, 100)
        .unwrap()
        .into_iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.target, r.jail, r.origin, r.reason, r.count
            )
        })
        .collect();
    (
        s.live_leases(NOW, None).unwrap(),
        events,
        refusals,
        s.counter("guard_refusals").unwrap(),
    )
}

#[test]
fn a_batch_does_what_the_single_calls_do_with_the_same_events() {
    let (_a, one) = store();
    let (_b, batch) = store();
    let singles: Vec<Admitted> = ops().iter().map(|op| single(&one, op)).collect();
    let batched = admit_peers(&batch, &guard(), &ops(), NOW).unwrap();
    assert_eq!(batched, singles);
    assert_eq!(picture(&batch), picture(&one));

    // And what that is: the extended lease ended, the revoke took both origins' leases, the
    // lease of another origin stayed.
    use crate::store::LeaseChange;
    assert_eq!(
        batched[0],
        Admitted::Ban(BanOutcome::Recorded(LeaseChange::New))
    );
    assert_eq!(
        batched[1],
        Admitted::Ban(BanOutcome::Recorded(LeaseChange::Same))
    );
    assert!(matches!(
        batched[2],
        Admitted::Ban(BanOutcome::Recorded(LeaseChange::Changed { .. }))
    ));
    assert!(matches!(batched[3], Admitted::Ban(BanOutcome::Refused(_))));
    assert_eq!(batched[4], Admitted::Ban(BanOutcome::Ended));
    assert!(matches!(&batched[8], Admitted::Ended(l) if l.len() == 1));
    assert_eq!(batched[9], Admitted::Ended(vec![]));
    assert_eq!(
        batched[10],
        Admitted::Ended(vec![]),
        "another origin's lease stays"
    );
    assert!(matches!(&batched[11], Admitted::Ended(l) if l.len() == 2));
    let (leases, events, refusals, refused) = picture(&batch);
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].target, t("192.0.2.3"));
    assert_eq!(events.len(), 8, "{events:#?}");
    assert_eq!(refusals.len(), 1);
    assert_eq!(refused, 1);
    // Seven items changed leases (the revoke two of them, hence eight events).
    assert_eq!(batched.iter().filter(|a| a.changed()).count(), 7);
}

#[test]
fn a_batch_that_fails_changes_nothing() {
    let (_d, s) = store();
    let g = guard();
    let r: Result<(), StoreError> = s.batch(|b: &mut Batch<'_>| {
        for op in ops() {
            admit_in(b, &g, &op, NOW)?;
        }
        Err(StoreError::Task("the caller gave up".into()))
    });
    assert!(r.is_err());
    assert_eq!(picture(&s), (vec![], vec![], vec![], 0));
    // The store is usable afterwards, and the same batch then applies in full.
    admit_peers(&s, &g, &ops(), NOW).unwrap();
    assert_eq!(picture(&s).1.len(), 8);
}

#[test]
fn another_writer_waits_for_a_batch_and_loses_nothing() {
    let (dir, s) = store();
    let g = guard();
    let other = std::thread::spawn({
        let path = dir.path().join("state");
        move || {
            let s2 = Store::open(&path).unwrap();
            for i in 0..50 {
                let PeerOp::Start(req) = start(&format!("198.51.100.{i}"), "web-09", NOW + 60)
                else {
                    unreachable!()
                };
                admit_peer(&s2, &guard(), &req, NOW).unwrap();
            }
        }
    });
    for chunk in 0..10 {
        let ops: Vec<PeerOp> = (0..100)
            .map(|i| {
                start(
                    &format!("203.0.113.{}", chunk * 20 + i % 20),
                    "web-02",
                    NOW + 60 + i,
                )
            })
            .collect();
        admit_peers(&s, &g, &ops, NOW).unwrap();
    }
    other.join().unwrap();
    let by: std::collections::BTreeMap<String, i64> =
        s.live_leases_by_origin(NOW).unwrap().into_iter().collect();
    assert_eq!(by.get("web-09"), Some(&50));
    assert_eq!(by.get("web-02"), Some(&200));
}
