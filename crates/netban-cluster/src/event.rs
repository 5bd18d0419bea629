//! The signed event: what one host tells the fleet about one of its leases, and its wire form.
//!
//! The wire form is one line of printable ASCII, readable in `redis-cli`:
//!
//! ```text
//! netban1 ORIGIN EPOCH SEQ SUB AT KIND TARGET JAIL UNTIL BANTIME SIGNATURE
//! netban1 web-01 1795303972000 42 0 1795303972 start 192.0.2.1/32 sshd 1795307572 3600 BASE64
//! ```
//!
//! Everything before the last space is the *canonical body*, the exact bytes the origin signs
//! with Ed25519 (the `netban1` tag keeps these signatures from meaning anything elsewhere).
//! Every field has one spelling only: decimal numbers without `+` or leading zeros, the
//! canonical target (`192.0.2.1/32`, IPv6 compressed lower case), `-` for a permanent
//! `UNTIL`. The decoder re-encodes what it parsed and refuses the event when that differs
//! from the body it got, so no two byte strings carry the same meaning and a signature
//! covers exactly what receivers act on.
//!
//! `(EPOCH, SEQ, SUB)` is the event's place in its origin's history ([`PeerMark`]): EPOCH the
//! origin's state database (milliseconds when it first published), SEQ its outbox event id,
//! SUB the number of a fleet-wide unban ordered after event SEQ (0 for a lease event).
//! `KIND` is `start` (a lease begins or gets another end: upsert), `end`, or `revoke` (end
//! every lease of TARGET on every host; JAIL is `*`, UNTIL `-`, BANTIME 0).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use netban_core::config::valid_name;
use netban_core::lease::validate_jail;
use netban_core::store::PeerMark;
use netban_core::{Target, Until};

use crate::sign::{HostKey, Trust};

/// The version tag that starts every event.
pub const TAG: &str = "netban1";
/// The longest wire form accepted (a real one is under 250 bytes).
pub const MAX_WIRE: usize = 512;

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The lease `(target, jail, origin)` holds until `until` (new or extended).
    Start,
    /// The lease `(target, jail, origin)` ended.
    End,
    /// Every lease of `target`, whatever its jail or origin, ends (`unban --everywhere`).
    Revoke,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::End => "end",
            Kind::Revoke => "revoke",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "start" => Kind::Start,
            "end" => Kind::End,
            "revoke" => Kind::Revoke,
            _ => return None,
        })
    }
}

/// One event from one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvent {
    /// The origin's host id.
    pub origin: String,
    pub mark: PeerMark,
    /// The origin's unix seconds when the change happened.
    pub at: i64,
    pub kind: Kind,
    pub target: Target,
    /// `*` for a revoke.
    pub jail: String,
    pub until: Until,
    /// Seconds, -1 permanent.
    pub bantime: i64,
}

/// Why bytes are not an event (a receiver counts it as `malformed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// Bytes decoded into an event, with its signature if it had one. Not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub event: PeerEvent,
    /// The canonical body (what the signature covers).
    pub body: String,
    pub signature: Option<[u8; 64]>,
}

impl PeerEvent {
    /// The canonical body.
    pub fn body(&self) -> String {
        let until = match self.until {
            Until::At(t) => t.to_string(),
            Until::Never => "-".to_string(),
        };
        format!(
            "{TAG} {} {} {} {} {} {} {} {} {} {}",
            self.origin,
            self.mark.epoch,
            self.mark.seq,
            self.mark.sub,
            self.at,
            self.kind.as_str(),
            self.target,
            self.jail,
            until,
            self.bantime
        )
    }

    /// The wire form, signed with `key`.
    pub fn sign(&self, key: &HostKey) -> String {
        let body = self.body();
        let sig = key.sign(body.as_bytes());
        format!("{body} {}", STANDARD.encode(sig))
    }

    /// The field `TARGET JAIL` under which the snapshot keeps this lease.
    pub fn snapshot_field(&self) -> String {
        format!("{} {}", self.target, self.jail)
    }
}

/// Parses the wire form (signed or not) and checks it is canonical. Never panics, whatever
/// the bytes.
pub fn decode(bytes: &[u8]) -> Result<Decoded, Malformed> {
    if bytes.len() > MAX_WIRE {
        return Err(bad(format!("{} bytes, more than {MAX_WIRE}", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(bad("holds characters other than printable ASCII"));
    }
    let fields: Vec<&str> = text.split(' ').collect();
    let (body_fields, signature) = match fields.len() {
        11 => (&fields[..], None),
        12 => (&fields[..11], Some(fields[11])),
        n => return Err(bad(format!("{n} fields, not 12"))),
    };
    if body_fields[0] != TAG {
        return Err(bad("does not start with netban1"));
    }
    let origin = body_fields[1];
    if !valid_name(origin) {
        return Err(bad("origin is not a host id"));
    }
    let num = |i: usize, what: &str| -> Result<i64, Malformed> {
        body_fields[i]
            .parse::<i64>()
            .map_err(|_| bad(format!("{what} is not a number")))
    };
    let mark = PeerMark {
        epoch: num(2, "epoch")?,
        seq: num(3, "seq")?,
        sub: num(4, "sub")?,
    };
    if mark.epoch < 0 || mark.seq < 0 || mark.sub < 0 {
        return Err(bad("a negative sequence"));
    }
    let at = num(5, "at")?;
    let kind =
        Kind::parse(body_fields[6]).ok_or_else(|| bad("kind is not start, end or revoke"))?;
    let target = Target::parse(body_fields[7]).map_err(|_| bad("target is not an IP network"))?;
    let jail = body_fields[8];
    let until = match body_fields[9] {
        "-" => Until::Never,
        _ => Until::At(num(9, "until")?),
    };
    let bantime = num(10, "bantime")?;
    if bantime < -1 {
        return Err(bad("bantime below -1"));
    }
    match kind {
        Kind::Revoke => {
            if jail != "*" || until != Until::Never || bantime != 0 {
                return Err(bad("a revoke has jail *, until - and bantime 0"));
            }
        }
        _ => validate_jail(jail).map_err(|_| bad("jail is not a jail name"))?,
    }
    let event = PeerEvent {
        origin: origin.to_string(),
        mark,
        at,
        kind,
        target,
        jail: jail.to_string(),
        until,
        bantime,
    };
    let body = event.body();
    let got = body_fields.join(" ");
    if body != got {
        return Err(bad("not in canonical form"));
    }
    let signature = match signature {
        None => None,
        Some(s) => {
            let raw = STANDARD
                .decode(s)
                .map_err(|_| bad("signature is not base64"))?;
            // One spelling of the signature too (base64 padding bits).
            if STANDARD.encode(&raw) != s {
                return Err(bad("signature is not canonical base64"));
            }
            Some(<[u8; 64]>::try_from(raw).map_err(|_| bad("a signature is 64 bytes"))?)
        }
    };
    Ok(Decoded {
        event,
        body,
        signature,
    })
}

/// Why an authentic-looking event was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// Its origin is not among the trusted peers.
    UnknownKey,
    /// No signature, or not the origin's.
    BadSignature,
}

/// Checks the signature against the origin's trusted key.
pub fn verify(d: &Decoded, trust: &Trust) -> Result<(), Unverified> {
    let key = trust.key(&d.event.origin).ok_or(Unverified::UnknownKey)?;
    let sig = d.signature.as_ref().ok_or(Unverified::BadSignature)?;
    if key.verifies(d.body.as_bytes(), sig) {
        Ok(())
    } else {
        Err(Unverified::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> PeerEvent {
        PeerEvent {
            origin: "web-01".into(),
            mark: PeerMark {
                epoch: 1_795_303_972_000,
                seq: 42,
                sub: 0,
            },
            at: 1_795_303_972,
            kind: Kind::Start,
            target: Target::parse("192.0.2.1").unwrap(),
            jail: "sshd".into(),
            until: Until::At(1_795_307_572),
            bantime: 3600,
        }
    }

    #[test]
    fn round_trips_and_verifies() {
        let key = HostKey::from_seed([7; 32]);
        let mut trust = Trust::default();
        trust.insert("web-01", key.public());
        let wire = ev().sign(&key);
        assert!(wire.starts_with(
            "netban1 web-01 1795303972000 42 0 1795303972 start 192.0.2.1/32 sshd 1795307572 3600 "
        ));
        let d = decode(wire.as_bytes()).unwrap();
        assert_eq!(d.event, ev());
        assert_eq!(verify(&d, &trust), Ok(()));
        // Permanent, IPv6, revoke.
        let mut e = ev();
        e.until = Until::Never;
        e.bantime = -1;
        e.target = Target::parse("2001:DB8::1").unwrap();
        let d = decode(e.sign(&key).as_bytes()).unwrap();
        assert_eq!(d.event, e);
        assert!(d.body.contains(" 2001:db8::1/128 sshd - -1"));
        let r = PeerEvent {
            kind: Kind::Revoke,
            jail: "*".into(),
            until: Until::Never,
            bantime: 0,
            ..ev()
        };
        assert_eq!(decode(r.sign(&key).as_bytes()).unwrap().event, r);
    }

    #[test]
    fn refuses_non_canonical_and_forged() {
        let key = HostKey::from_seed([7; 32]);
        let other = HostKey::from_seed([8; 32]);
        let mut trust = Trust::default();
        trust.insert("web-01", key.public());
        let wire = ev().sign(&key);
        // Another spelling of the same meaning: refused before the signature is looked at.
        for (from, to) in [
            (" 42 ", " 042 "),
            (" 42 ", " +42 "),
            ("192.0.2.1/32", "192.0.2.1"),
            (" sshd ", "  sshd "),
        ] {
            let w = wire.replacen(from, to, 1);
            assert!(decode(w.as_bytes()).is_err(), "{w}");
        }
        // Unsigned, tampered, wrong key, unknown origin.
        let d = decode(ev().body().as_bytes()).unwrap();
        assert_eq!(verify(&d, &trust), Err(Unverified::BadSignature));
        let tampered = wire.replacen(" 3600 ", " 7200 ", 1);
        let d = decode(tampered.as_bytes()).unwrap();
        assert_eq!(verify(&d, &trust), Err(Unverified::BadSignature));
        let d = decode(ev().sign(&other).as_bytes()).unwrap();
        assert_eq!(verify(&d, &trust), Err(Unverified::BadSignature));
        let mut e = ev();
        e.origin = "web-09".into();
        let d = decode(e.sign(&key).as_bytes()).unwrap();
        assert_eq!(verify(&d, &trust), Err(Unverified::UnknownKey));
        // Hostile values.
        for w in [
            "",
            "netban1",
            "netban1 web-01 1 1 0 1 start 1.2.3.4;id/32 sshd - 1",
            "netban1 web-01 1 1 0 1 start 192.0.2.1/32 $(id) - 1",
            "netban1 web-01 1 1 0 1 revoke 192.0.2.1/32 sshd - 0",
            "netban1 web-01 -1 1 0 1 start 192.0.2.1/32 sshd - 1",
            "netban1 web-01 1 1 0 1 start 192.0.2.1/32 sshd - -2",
            "netban1 web-01 99999999999999999999 1 0 1 start 192.0.2.1/32 sshd - 1",
        ] {
            assert!(decode(w.as_bytes()).is_err(), "{w:?}");
        }
        assert!(decode(&vec![b'a'; 4096]).is_err());
        assert!(decode(&[0xff, 0xfe]).is_err());
    }
}
