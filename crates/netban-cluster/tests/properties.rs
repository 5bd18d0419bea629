//! Property tests of the two decoders that read what the network sends: the signed event
//! (`event::decode`) and fail2ban-clusterd's messages (`fanout::message::parse`), plus the
//! corpus of hostile inputs in `tests/corpus/`.

use netban_cluster::HostKey;
use netban_cluster::event::{self, Kind, PeerEvent};
use netban_cluster::fanout::message;
use netban_cluster::sign::Trust;
use netban_core::store::PeerMark;
use netban_core::{Target, Until};
use proptest::prelude::*;

fn key() -> HostKey {
    HostKey::from_seed([3; 32])
}

fn trust() -> Trust {
    let mut t = Trust::default();
    t.insert("web-01", key().public());
    t
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (any::<[u8; 4]>(), 8u8..=32).prop_map(|(a, l)| Target::from_parts(a.into(), l).unwrap()),
        (any::<[u8; 16]>(), 32u8..=128).prop_filter_map("mapped", |(a, l)| {
            Target::from_parts(std::net::Ipv6Addr::from(a).into(), l).ok()
        }),
    ]
}

fn peer_event() -> impl Strategy<Value = PeerEvent> {
    (
        "[a-z][a-z0-9.-]{0,20}",
        (0i64..i64::MAX, 0i64..i64::MAX, 0i64..1000),
        any::<i64>(),
        prop_oneof![Just(Kind::Start), Just(Kind::End), Just(Kind::Revoke)],
        target(),
        "[a-z][a-z0-9_.@:-]{0,30}",
        prop_oneof![Just(None), any::<i64>().prop_map(Some)],
        -1i64..10_000_000,
    )
        .prop_map(
            |(origin, (e, s, sub), at, kind, target, jail, until, bantime)| {
                let revoke = kind == Kind::Revoke;
                PeerEvent {
                    origin,
                    mark: PeerMark {
                        epoch: e,
                        seq: s,
                        sub,
                    },
                    at,
                    kind,
                    target,
                    jail: if revoke { "*".into() } else { jail },
                    until: if revoke {
                        Until::Never
                    } else {
                        until.map_or(Until::Never, Until::At)
                    },
                    bantime: if revoke { 0 } else { bantime },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = event::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_event_like_text(s in "netban1( [ -~]{0,20}){0,14}") {
        let _ = event::decode(s.as_bytes());
    }

    #[test]
    fn signed_events_round_trip_and_verify(ev in peer_event()) {
        let mut ev = ev;
        ev.origin = "web-01".into();
        let wire = ev.sign(&key());
        let d = event::decode(wire.as_bytes()).unwrap();
        prop_assert_eq!(&d.event, &ev);
        prop_assert!(event::verify(&d, &trust()).is_ok());
    }

    #[test]
    fn any_changed_byte_is_refused_or_unverified(ev in peer_event(), at in any::<prop::sample::Index>(), b in 32u8..127) {
        let mut ev = ev;
        ev.origin = "web-01".into();
        let mut wire = ev.sign(&key()).into_bytes();
        let i = at.index(wire.len());
        prop_assume!(wire[i] != b);
        wire[i] = b;
        if let Ok(d) = event::decode(&wire) {
            prop_assert!(event::verify(&d, &trust()).is_err(), "{}", String::from_utf8_lossy(&wire));
        }
    }

    #[test]
    fn clusterd_parser_never_panics(s in "[ -~]{0,200}") {
        let _ = message::parse(&s);
    }

    #[test]
    fn clusterd_messages_round_trip(t in target(), jail in "[a-z][a-z0-9_.@:-]{0,30}", ban in any::<bool>()) {
        let m = message::Message {
            jail,
            action: if ban { message::Action::Ban } else { message::Action::Unban },
            target: t,
        };
        prop_assert_eq!(message::parse(&m.format()).unwrap(), m);
    }

    #[test]
    fn clusterd_values_with_shell_syntax_are_refused(
        ip in "[0-9.]{1,15}", junk in "[;&|`$() <>\\\\'\"]{1,5}[a-z]{0,5}"
    ) {
        let msg = format!("jail=sshd, action=banip, ip={ip}{junk}");
        prop_assert!(message::parse(&msg).is_err(), "{}", msg);
    }
}

fn corpus(name: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_event_corpus_is_refused() {
    let lines = corpus("events.txt");
    assert!(lines.len() > 15);
    for l in lines {
        match event::decode(l.as_bytes()) {
            Err(_) => {}
            Ok(d) => assert!(event::verify(&d, &trust()).is_err(), "accepted: {l}"),
        }
    }
}

#[test]
fn the_clusterd_corpus_is_refused() {
    let lines = corpus("clusterd.txt");
    assert!(lines.len() > 20);
    for l in lines {
        assert!(message::parse(&l).is_err(), "accepted: {l}");
    }
}
