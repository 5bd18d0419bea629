//! The human-readable `netban stats`: totals, bans per day (with a bar), top countries, jails
//! and ASNs, repeat offenders and hosts. Plain text, fixed-width columns, no colour: it is
//! read in terminals, mails from cron and logs alike. `--json` prints the [`Report`] instead.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::report::{Counts, Details, Report};

/// Rows in each top list.
pub const TOP_ROWS: usize = 10;
/// Width of the longest per-day bar.
const BAR: u64 = 40;

/// Renders `report` (and, when not empty, the lists of `details`) as a table.
pub fn render_table(report: &Report, details: &Details) -> String {
    let mut out = String::new();
    let (first, last) = match (report.per_day.first(), report.per_day.last()) {
        (Some(f), Some(l)) => (f.day.to_string(), l.day.to_string()),
        _ => (String::new(), String::new()),
    };
    let _ = writeln!(
        out,
        "bans in the last {} day{} ({first} to {last}): {}, distinct targets: {}",
        report.days,
        if report.days == 1 { "" } else { "s" },
        report.total,
        report.targets
    );
    if report.total == 0 {
        out.push_str("no bans recorded in this period\n");
        return out;
    }

    out.push_str("\nper day\n");
    let max = report
        .per_day
        .iter()
        .map(|d| d.total)
        .max()
        .unwrap_or(0)
        .max(1);
    for d in &report.per_day {
        let bar = (d.total * BAR).div_ceil(max) as usize;
        let top = top_keys(&d.by_country, 3)
            .into_iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "  {}  {:>7}  {:<40}  {top}",
            d.day,
            d.total,
            "#".repeat(bar)
        );
    }

    section(&mut out, "top countries", &report.by_country, report.total);
    section(&mut out, "top jails", &report.by_jail, report.total);

    out.push_str("\ntop autonomous systems\n");
    if details.top_asns.is_empty() {
        for (k, n) in top_keys(&report.by_asn, TOP_ROWS) {
            let _ = writeln!(out, "  {k:<12} {n:>7}  {}", percent(n, report.total));
        }
    } else {
        for a in details.top_asns.iter().take(TOP_ROWS) {
            let _ = writeln!(
                out,
                "  {:<12} {:>7}  {}  {}",
                a.asn,
                a.bans,
                percent(a.bans, report.total),
                clip(a.org.as_deref().unwrap_or(""), 40)
            );
        }
    }

    if !details.top_offenders.is_empty() {
        out.push_str("\nrepeat offenders\n");
        let _ = writeln!(
            out,
            "  {:<43} {:>5}  {:<17}  {:<7}  {:<12}  jail",
            "target", "bans", "last seen (UTC)", "country", "asn"
        );
        for o in details.top_offenders.iter().take(TOP_ROWS) {
            let _ = writeln!(
                out,
                "  {:<43} {:>5}  {:<17}  {:<7}  {:<12}  {}",
                o.target,
                o.bans,
                utc(o.last_seen),
                o.country,
                o.asn,
                o.jail
            );
        }
    }

    if details.hosts.len() > 1 {
        out.push_str("\nhosts\n");
        for h in &details.hosts {
            let _ = writeln!(
                out,
                "  {:<30} {:>7}  {}  last ban {}",
                clip(&h.host, 30),
                h.bans,
                percent(h.bans, report.total),
                h.last_seen.map(utc).unwrap_or_else(|| "-".into())
            );
        }
    }
    out
}

fn section(out: &mut String, title: &str, counts: &Counts, total: u64) {
    let _ = writeln!(out, "\n{title}");
    let rows = top_keys(counts, TOP_ROWS);
    let shown: u64 = rows.iter().map(|(_, n)| n).sum();
    for (k, n) in &rows {
        let _ = writeln!(out, "  {:<20} {n:>7}  {}", clip(k, 20), percent(*n, total));
    }
    if counts.len() > rows.len() {
        let other = total.saturating_sub(shown);
        let _ = writeln!(
            out,
            "  {:<20} {other:>7}  {}",
            format!("({} more)", counts.len() - rows.len()),
            percent(other, total)
        );
    }
}

/// The `n` largest entries, ties by key.
fn top_keys(counts: &Counts, n: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = counts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}

fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>6}", "-");
    }
    format!("{:>5.1}%", n as f64 * 100.0 / total as f64)
}

fn utc(at: i64) -> String {
    Timestamp::from_second(at)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| at.to_string())
}

/// At most `n` characters, printable only (names come from mmdb files).
fn clip(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Day;
    use crate::report::{AsnCount, DayReport, HostCount, Offender};

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    fn sample() -> (Report, Details) {
        let d1 = Day::parse("2026-11-30").unwrap();
        let d2 = Day::parse("2026-12-01").unwrap();
        let report = Report {
            days: 2,
            total: 4,
            targets: 3,
            by_country: counts(&[("GB", 2), ("SE", 1), ("unknown", 1)]),
            by_jail: counts(&[("sshd", 3), ("postfix", 1)]),
            by_asn: counts(&[("AS29518", 1), ("unknown", 3)]),
            per_day: vec![
                DayReport {
                    day: d1,
                    total: 1,
                    by_country: counts(&[("SE", 1)]),
                    by_jail: counts(&[("sshd", 1)]),
                },
                DayReport {
                    day: d2,
                    total: 3,
                    by_country: counts(&[("GB", 2), ("unknown", 1)]),
                    by_jail: counts(&[("sshd", 2), ("postfix", 1)]),
                },
            ],
        };
        let details = Details {
            top_asns: vec![
                AsnCount {
                    asn: "unknown".into(),
                    org: None,
                    bans: 3,
                },
                AsnCount {
                    asn: "AS29518".into(),
                    org: Some("Bredband2 AB".into()),
                    bans: 1,
                },
            ],
            top_offenders: vec![Offender {
                target: "81.2.69.160/32".into(),
                bans: 2,
                last_seen: 1_796_167_800,
                country: "GB".into(),
                asn: "unknown".into(),
                jail: "sshd".into(),
            }],
            hosts: vec![
                HostCount {
                    host: "web-01".into(),
                    bans: 3,
                    by_jail: Counts::new(),
                    last_seen: Some(1_796_167_800),
                },
                HostCount {
                    host: "web-02".into(),
                    bans: 1,
                    by_jail: Counts::new(),
                    last_seen: None,
                },
            ],
        };
        (report, details)
    }

    #[test]
    fn shows_totals_days_tops_offenders_and_hosts() {
        let (report, details) = sample();
        let text = render_table(&report, &details);
        assert!(
            text.starts_with(
                "bans in the last 2 days (2026-11-30 to 2026-12-01): 4, distinct targets: 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  2026-11-30        1  ##############"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  2026-12-01        3  {:<40}  GB 2, unknown 1",
                "#".repeat(40)
            )),
            "{text}"
        );
        assert!(
            text.contains("\ntop countries\n  GB                         2   50.0%\n"),
            "{text}"
        );
        assert!(
            text.contains("\ntop jails\n  sshd                       3   75.0%\n  postfix"),
            "{text}"
        );
        assert!(
            text.contains("  AS29518            1   25.0%  Bredband2 AB\n"),
            "{text}"
        );
        assert!(text.contains("81.2.69.160/32"), "{text}");
        assert!(text.contains("2026-12-01 23:30"), "{text}");
        assert!(text.contains("\nhosts\n  web-01"), "{text}");
    }

    #[test]
    fn without_details_asns_come_from_the_report() {
        let (report, _) = sample();
        let text = render_table(&report, &Details::default());
        assert!(
            text.contains("\ntop autonomous systems\n  unknown            3"),
            "{text}"
        );
        assert!(!text.contains("repeat offenders"));
        assert!(!text.contains("\nhosts\n"));
    }

    #[test]
    fn an_empty_period_says_so() {
        let text = render_table(
            &Report {
                days: 7,
                ..Report::default()
            },
            &Details::default(),
        );
        assert!(text.contains("no bans recorded in this period"), "{text}");
    }
}
