//! What statistics count, and the record they keep for each counted ban.
//!
//! The counting rule (DESIGN.md, Statistics): **a ban is counted once, when its lease starts**
//! — an outbox event with `kind == start` and a cause other than `restore` — and a host counts
//! only its own (`origin == "local"`) leases; peer leases are counted by the host where they
//! started. Extends, restores, unbans, expiry, flushes and revokes never change history, so
//! re-reading the outbox or restarting fail2ban never inflates a number.
//!
//! [`SourceEvent`] carries the outbox fields the rule and the record need
//! (`From<&netban_core::outbox::Event>`).

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};
use netban_core::Target;
use serde::{Deserialize, Serialize};

pub use netban_core::outbox::{Cause, EventKind};

/// The `origin` of a lease this host started itself.
pub const LOCAL_ORIGIN: &str = "local";

/// One outbox event, as the ingester reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEvent {
    /// The outbox row id: monotonic, the key of exactly-once counting.
    pub id: i64,
    /// Unix seconds of the change.
    pub at: i64,
    pub kind: EventKind,
    pub cause: Cause,
    pub target: Target,
    pub jail: String,
    /// `local`, or the peer's host id.
    pub origin: String,
}

impl From<&netban_core::outbox::Event> for SourceEvent {
    fn from(e: &netban_core::outbox::Event) -> SourceEvent {
        SourceEvent {
            id: e.id,
            at: e.at,
            kind: e.kind,
            cause: e.cause,
            target: e.target,
            jail: e.jail.clone(),
            origin: e.origin.clone(),
        }
    }
}

impl SourceEvent {
    /// The counting rule: a local lease starting, not a restore (the same rule as
    /// [`netban_core::outbox::Event::counts_as_ban`]).
    pub fn is_counted(&self) -> bool {
        self.kind == EventKind::Start && self.cause == Cause::Ban && self.origin == LOCAL_ORIGIN
    }
}

/// A calendar day in the configured zone, as days since 1970-01-01. Printed and serialised
/// as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub i32);

const EPOCH: Date = Date::constant(1970, 1, 1);

impl Day {
    /// The day `at` (unix seconds) falls on in `zone`. Out-of-range instants (beyond year
    /// ±9999) clamp to the epoch day rather than fail: they cannot come from a real clock.
    pub fn of(at: i64, zone: &TimeZone) -> Day {
        let date = Timestamp::from_second(at)
            .map(|ts| zone.to_datetime(ts).date())
            .unwrap_or(EPOCH);
        Day::from_date(date)
    }

    pub fn from_date(date: Date) -> Day {
        // `since` in days is exact for civil dates; the range of Date keeps it within i32.
        let days = date
            .since((jiff::Unit::Day, EPOCH))
            .map(|s| s.get_days())
            .unwrap_or(0);
        Day(days)
    }

    pub fn date(self) -> Date {
        EPOCH.checked_add(i64::from(self.0).days()).unwrap_or(EPOCH)
    }

    /// `days` before this one (negative: after).
    pub fn minus(self, days: i32) -> Day {
        Day(self.0 - days)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Day> {
        s.parse::<Date>().ok().map(Day::from_date)
    }

    /// The first instant of the day in `zone` (unix seconds).
    pub fn start(self, zone: &TimeZone) -> i64 {
        zone.to_timestamp(self.date().to_datetime(jiff::civil::Time::midnight()))
            .map(|t| t.as_second())
            .unwrap_or(i64::from(self.0) * 86_400)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.date();
        write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
        let s = String::deserialize(d)?;
        Day::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not YYYY-MM-DD")))
    }
}

/// The key shown where a database has no answer.
pub const UNKNOWN: &str = "unknown";

/// One counted ban with everything statistics group by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrichedEvent {
    /// Outbox id on `host`.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The day of `at` in the configured zone.
    pub day: Day,
    /// The host that counted it (its `host_id`).
    pub host: String,
    pub target: Target,
    pub jail: String,
    /// ISO 3166 alpha-2 code, or `unknown`.
    pub country: String,
    /// Autonomous system number, when the ASN database knows it.
    pub asn: Option<u32>,
    /// The AS organisation, when known.
    pub org: Option<String>,
    /// The network the target is counted in: the ASN database's network when it has data,
    /// else the covering /24 (IPv4) or /48 (IPv6), else the target itself when wider.
    pub network: String,
}

impl EnrichedEvent {
    /// `AS29518`, or `unknown`.
    pub fn asn_key(&self) -> String {
        asn_key(self.asn)
    }
}

/// `AS<number>`, or `unknown`.
pub fn asn_key(asn: Option<u32>) -> String {
    match asn {
        Some(n) => format!("AS{n}"),
        None => UNKNOWN.to_string(),
    }
}

/// The number in `AS29518`; `None` for `unknown` or anything else.
pub fn parse_asn_key(key: &str) -> Option<u32> {
    key.strip_prefix("AS").and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, cause: Cause, origin: &str) -> SourceEvent {
        SourceEvent {
            id: 1,
            at: 0,
            kind,
            cause,
            target: Target::parse("192.0.2.1").unwrap(),
            jail: "sshd".into(),
            origin: origin.into(),
        }
    }

    #[test]
    fn only_local_starts_that_are_not_restores_count() {
        assert!(ev(EventKind::Start, Cause::Ban, "local").is_counted());
        assert!(!ev(EventKind::Start, Cause::Restore, "local").is_counted());
        assert!(!ev(EventKind::Start, Cause::Peer, "web-02").is_counted());
        assert!(!ev(EventKind::Extend, Cause::Ban, "local").is_counted());
        assert!(!ev(EventKind::Start, Cause::Adopt, "local").is_counted());
        for cause in [Cause::Unban, Cause::Expired, Cause::Revoke] {
            assert!(!ev(EventKind::End, cause, "local").is_counted());
        }
    }

    #[test]
    fn days_follow_the_zone() {
        // 2026-12-01T23:30:00Z
        let at = 1_796_167_800;
        assert_eq!(Day::of(at, &TimeZone::UTC).to_string(), "2026-12-01");
        let prague = TimeZone::get("Europe/Prague").unwrap();
        assert_eq!(Day::of(at, &prague).to_string(), "2026-12-02");
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(Day::of(at, &ny).to_string(), "2026-12-01");
        let d = Day::parse("2026-12-02").unwrap();
        assert_eq!(d.start(&prague), at - 30 * 60);
        assert_eq!(Day::parse("1970-01-02"), Some(Day(1)));
        assert_eq!(serde_json::to_string(&Day(0)).unwrap(), "\"1970-01-01\"");
    }

    #[test]
    fn asn_keys() {
        assert_eq!(asn_key(Some(29518)), "AS29518");
        assert_eq!(asn_key(None), "unknown");
        assert_eq!(parse_asn_key("AS29518"), Some(29518));
        assert_eq!(parse_asn_key("unknown"), None);
    }
}
