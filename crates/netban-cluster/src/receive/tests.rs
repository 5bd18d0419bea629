//! A page of stream entries goes through the checks in stream order inside one transaction:
//! two events of one origin in a page are each checked against what the one before left
//! (marks, caps), and the cursor and marks commit with the leases.

use netban_core::config::GuardConfig;
use netban_core::guard::Guard;
use netban_core::store::{BusCursor, PeerMark, Store};
use netban_core::{Target, Until};

use super::Admission;
use crate::config::ClusterConfig;
use crate::counts::UNTRUSTED;
use crate::event::{Kind, PeerEvent};
use crate::sign::{HostKey, Trust};
use crate::status::RECEIVER_CURSOR;

const NOW: i64 = 1_800_000_000;

fn key() -> HostKey {
    HostKey::from_seed([3; 32])
}

fn setup(cfg: &ClusterConfig) -> (tempfile::TempDir, Store, Admission) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let mut trust = Trust::default();
    trust.insert("a", key().public());
    let adm = Admission::new(cfg, "b", trust, &store, NOW).unwrap();
    (dir, store, adm)
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

fn ev(seq: i64, kind: Kind, ip: &str) -> Vec<u8> {
    PeerEvent {
        origin: "a".into(),
        mark: PeerMark {
            epoch: 1,
            seq,
            sub: 0,
        },
        at: NOW - 100 + seq,
        kind,
        target: Target::parse(ip).unwrap(),
        jail: "sshd".into(),
        until: Until::At(NOW + 3600 + seq),
        bantime: 3600,
    }
    .sign(&key())
    .into_bytes()
}

fn cursor(id: &str) -> BusCursor {
    BusCursor {
        stream_id: id.into(),
        epoch: "e".into(),
    }
}

fn take(a: &mut Admission, s: &Store, page: &[Option<Vec<u8>>], id: &str) -> bool {
    let wires: Vec<Option<&[u8]>> = page.iter().map(|w| w.as_deref()).collect();
    a.take_page(s, &guard(), &wires, (RECEIVER_CURSOR, &cursor(id)), NOW)
        .unwrap()
}

fn count(s: &Store, origin: &str, cause: &str) -> i64 {
    s.peer_counts()
        .unwrap()
        .into_iter()
        .find(|(o, c, _)| o == origin && c == cause)
        .map_or(0, |(_, _, n)| n)
}

fn leases_from_a(s: &Store) -> Vec<String> {
    s.live_leases(NOW, None)
        .unwrap()
        .into_iter()
        .filter(|l| l.origin.as_str() == "a")
        .map(|l| l.target.to_string())
        .collect()
}

#[test]
fn replays_inside_one_page_are_refused_against_the_events_before_them() {
    let (_d, s, mut a) = setup(&ClusterConfig::default());
    let page = vec![
        Some(ev(1, Kind::Start, "192.0.2.1")),
        Some(ev(2, Kind::Start, "192.0.2.2")),
        Some(ev(2, Kind::Start, "192.0.2.2")),
        Some(ev(1, Kind::Start, "192.0.2.1")),
        Some(ev(3, Kind::End, "192.0.2.1")),
        None,
    ];
    assert!(take(&mut a, &s, &page, "7-0"));
    assert_eq!(leases_from_a(&s), ["192.0.2.2/32"]);
    assert_eq!(count(&s, "a", "accepted"), 3);
    assert_eq!(count(&s, "a", "replay"), 2);
    assert_eq!(count(&s, UNTRUSTED, "malformed"), 1);
    // The cursor and the mark were saved with the leases.
    assert_eq!(s.bus_cursor(RECEIVER_CURSOR).unwrap(), Some(cursor("7-0")));
    let mark = |s: &Store| {
        s.peer_states()
            .unwrap()
            .into_iter()
            .find(|p| p.origin == "a")
            .map(|p| p.mark.seq)
    };
    assert_eq!(mark(&s), Some(3));
    // Each change appended its event once: start, start, end.
    let kinds: Vec<&str> = s
        .events_after(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["start", "start", "end"]);
    // The same page again (a reader that lost its cursor) changes nothing.
    assert!(!take(&mut a, &s, &page, "7-0"));
    assert_eq!(count(&s, "a", "replay"), 2 + 5);
    assert_eq!(s.events_after(0, 100).unwrap().len(), 3);
}

#[test]
fn the_active_cap_counts_what_earlier_events_of_the_page_did() {
    let mut cfg = ClusterConfig::default();
    cfg.limits.active_per_origin = 2;
    let (_d, s, mut a) = setup(&cfg);
    let page = vec![
        Some(ev(1, Kind::Start, "192.0.2.1")),
        Some(ev(2, Kind::Start, "192.0.2.2")),
        Some(ev(3, Kind::Start, "192.0.2.3")),
        // An existing lease may still be extended at the cap.
        Some(ev(4, Kind::Start, "192.0.2.1")),
        // An end makes room for the next start, in the same page.
        Some(ev(5, Kind::End, "192.0.2.2")),
        Some(ev(6, Kind::Start, "192.0.2.4")),
    ];
    take(&mut a, &s, &page, "9-0");
    assert_eq!(leases_from_a(&s), ["192.0.2.1/32", "192.0.2.4/32"]);
    assert_eq!(count(&s, "a", "cap"), 1);
    assert_eq!(count(&s, "a", "accepted"), 5);
}

#[test]
fn a_page_whose_transaction_fails_keeps_nothing_and_is_taken_again_in_full() {
    // Exactly the page's bans within the minute: the failed try must not use up the rate.
    let mut cfg = ClusterConfig::default();
    cfg.limits.bans_per_minute = 20;
    let (d, s, mut a) = setup(&cfg);
    let page: Vec<Option<Vec<u8>>> = (1..=20)
        .map(|i| Some(ev(i, Kind::Start, &format!("192.0.2.{i}"))))
        .collect();
    // The disk refuses the 15th lease of the page.
    let db = rusqlite::Connection::open(d.path().join("state/netban.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER fail BEFORE INSERT ON leases WHEN NEW.target = '192.0.2.15/32'
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    let wires: Vec<Option<&[u8]>> = page.iter().map(|w| w.as_deref()).collect();
    let r = a.take_page(&s, &guard(), &wires, (RECEIVER_CURSOR, &cursor("5-0")), NOW);
    assert!(r.is_err());
    assert!(
        leases_from_a(&s).is_empty(),
        "none of the page, not the first 14"
    );
    assert_eq!(s.events_after(0, 100).unwrap().len(), 0);
    assert_eq!(s.bus_cursor(RECEIVER_CURSOR).unwrap(), None);
    assert!(s.peer_states().unwrap().is_empty(), "no mark moved");
    db.execute_batch("DROP TRIGGER fail").unwrap();
    // Read again from the old cursor: every event once, none refused as a replay.
    take(&mut a, &s, &page, "5-0");
    assert_eq!(leases_from_a(&s).len(), 20);
    assert_eq!(count(&s, "a", "accepted"), 20);
    assert_eq!(count(&s, "a", "replay"), 0);
    assert_eq!(count(&s, "a", "rate"), 0);
    assert_eq!(s.events_after(0, 100).unwrap().len(), 20);
}
