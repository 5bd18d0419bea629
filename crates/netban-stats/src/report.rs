//! What statistics answer: the `netban stats --json` report of DESIGN.md and the rows behind
//! the dashboard's other charts. These types are the JSON of the CLI and of the web API, so
//! their serde shape is a contract: fields may be added, none renamed or moved.
//!
//! Keys of the count maps are ISO country codes, `AS<number>`, jail names, and `unknown`
//! where a database had no answer. Maps serialise sorted by key; per-day arrays are oldest
//! first and hold every day of the window, zeros included, so charts need no gap filling.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::model::Day;

/// Counts by key (country, jail, `AS<n>`, host).
pub type Counts = BTreeMap<String, u64>;

/// The days a query covers: `first..=last` in the configured zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub first: Day,
    pub last: Day,
}

/// Longest window a query accepts (ten years): bounds the work of one request.
pub const MAX_WINDOW_DAYS: u32 = 3660;

impl Window {
    /// The last `days` days up to and including the day of `now` (unix seconds) in `zone`.
    /// `days` is clamped to `1..=MAX_WINDOW_DAYS`.
    pub fn last(days: u32, now: i64, zone: &TimeZone) -> Window {
        let days = days.clamp(1, MAX_WINDOW_DAYS);
        let last = Day::of(now, zone);
        Window {
            first: last.minus(days as i32 - 1),
            last,
        }
    }

    /// Number of days in the window.
    pub fn days(&self) -> u32 {
        u32::try_from(self.last.0 - self.first.0 + 1).unwrap_or(0)
    }

    /// Every day, oldest first.
    pub fn each_day(&self) -> impl Iterator<Item = Day> {
        (self.first.0..=self.last.0).map(Day)
    }

    pub fn contains(&self, day: Day) -> bool {
        self.first <= day && day <= self.last
    }
}

/// `netban stats --json` (DESIGN.md): totals over the window and one entry per day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Days covered.
    pub days: u32,
    /// Bans counted.
    pub total: u64,
    /// Distinct targets banned (exact with SQLite; a HyperLogLog estimate, ±0.81 %, with
    /// Redis).
    pub targets: u64,
    pub by_country: Counts,
    pub by_jail: Counts,
    pub by_asn: Counts,
    /// Oldest first, one per day of the window.
    pub per_day: Vec<DayReport>,
}

/// One day of a [`Report`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayReport {
    pub day: Day,
    pub total: u64,
    pub by_country: Counts,
    pub by_jail: Counts,
}

impl Report {
    /// A report of `window` from per-day counts (missing days count zero). `by_asn` and
    /// `targets` are filled by the caller.
    pub(crate) fn from_days(window: Window, mut days: BTreeMap<Day, DayReport>) -> Report {
        let mut r = Report {
            days: window.days(),
            ..Report::default()
        };
        for day in window.each_day() {
            let d = days.remove(&day).unwrap_or_else(|| DayReport {
                day,
                ..DayReport::default()
            });
            r.total += d.total;
            add_all(&mut r.by_country, &d.by_country);
            add_all(&mut r.by_jail, &d.by_jail);
            r.per_day.push(d);
        }
        r
    }
}

pub(crate) fn add_all(into: &mut Counts, from: &Counts) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// One autonomous system among the top ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnCount {
    /// `AS29518`, or `unknown`.
    pub asn: String,
    /// The AS organisation, when the database knows it.
    pub org: Option<String>,
    pub bans: u64,
}

/// One network among the top ones (the ASN database's network, else the /24 or /48).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCount {
    /// CIDR, e.g. `89.160.20.128/25`.
    pub network: String,
    pub bans: u64,
    /// Of the latest ban in it.
    pub country: String,
    pub asn: String,
    pub org: Option<String>,
}

/// A target banned again and again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offender {
    /// The target, e.g. `192.0.2.1/32`.
    pub target: String,
    pub bans: u64,
    /// Unix seconds of its latest ban.
    pub last_seen: i64,
    /// Of its latest ban.
    pub country: String,
    pub asn: String,
    pub jail: String,
}

/// One host's share of the statistics (with Redis, every host of the fleet that wrote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCount {
    pub host: String,
    pub bans: u64,
    pub by_jail: Counts,
    /// Unix seconds of the latest ban this host recorded (any time, not only the window).
    pub last_seen: Option<i64>,
}

/// What the table of `netban stats` shows beyond the [`Report`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub top_asns: Vec<AsnCount>,
    pub top_offenders: Vec<Offender>,
    pub hosts: Vec<HostCount>,
}

/// Everything a dashboard refresh (and the `netban stats` table) shows, over one window:
/// `/api/v1/stats/summary`. Backends may answer it in one pass over their data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub report: Report,
    pub top_asns: Vec<AsnCount>,
    pub top_networks: Vec<NetworkCount>,
    pub top_offenders: Vec<Offender>,
    pub hosts: Vec<HostCount>,
}

impl Summary {
    /// The lists of the `netban stats` table.
    pub fn into_parts(self) -> (Report, Details) {
        let details = Details {
            top_asns: self.top_asns,
            top_offenders: self.top_offenders,
            hosts: self.hosts,
        };
        (self.report, details)
    }
}

/// Sorts by count, largest first, then by key; keeps `limit`.
pub(crate) fn top<T>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> (u64, &str)) -> Vec<T> {
    rows.sort_by(|a, b| {
        let (ca, ka) = key(a);
        let (cb, kb) = key(b);
        cb.cmp(&ca).then_with(|| ka.cmp(kb))
    });
    rows.truncate(limit);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_end_today_in_the_zone() {
        // 2026-12-01T23:30:00Z is already 2026-12-02 in Prague.
        let now = 1_796_167_800;
        let w = Window::last(7, now, &TimeZone::UTC);
        assert_eq!(
            (w.first.to_string(), w.last.to_string()),
            ("2026-11-25".into(), "2026-12-01".into())
        );
        assert_eq!(w.days(), 7);
        let prague = TimeZone::get("Europe/Prague").unwrap();
        assert_eq!(
            Window::last(1, now, &prague).first.to_string(),
            "2026-12-02"
        );
        assert_eq!(Window::last(0, now, &prague).days(), 1);
    }

    #[test]
    fn json_has_the_shape_of_design_md() {
        let w = Window::last(2, 1_796_167_800, &TimeZone::UTC);
        let mut days = BTreeMap::new();
        days.insert(
            w.last,
            DayReport {
                day: w.last,
                total: 2,
                by_country: [("GB".to_string(), 2)].into(),
                by_jail: [("sshd".to_string(), 2)].into(),
            },
        );
        let mut r = Report::from_days(w, days);
        r.targets = 1;
        r.by_asn = [("unknown".to_string(), 2)].into();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"days":2,"total":2,"targets":1,"by_country":{"GB":2},"by_jail":{"sshd":2},"by_asn":{"unknown":2},"per_day":[{"day":"2026-11-30","total":0,"by_country":{},"by_jail":{}},{"day":"2026-12-01","total":2,"by_country":{"GB":2},"by_jail":{"sshd":2}}]}"#
        );
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
