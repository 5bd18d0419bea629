//! Queries over `stats.db`: every one reads the rollups of the window's days, never the raw
//! events, so its cost follows the number of days and distinct keys per day, not of bans.
//! Sums and distinct counts are done in hash maps over integer ids: SQLite's GROUP BY and
//! COUNT(DISTINCT) sort every row, which costs more than the rows' reading.
//!
//! Each rollup table is read by one scan ([`scan_daily`], [`sum_ids`]) whose result the
//! answers are built from, so [`summary`] reads each table of the window once for all five
//! answers instead of once per answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::RangeInclusive;

use rusqlite::{Connection, Transaction, params};

use super::dim;
use crate::model::{Day, asn_key, parse_asn_key};
use crate::report::{
    AsnCount, DayReport, HostCount, NetworkCount, Offender, Report, Summary, Window, top,
};

/// What one scan of `daily` over a window summed.
#[derive(Default)]
struct DailySums {
    days: BTreeMap<Day, DayReport>,
    by_asn: HashMap<String, u64>,
    hosts: BTreeMap<String, HostCount>,
}

/// Sums the `daily` rows of `w` whose dimension is in `dims`.
fn scan_daily(
    tx: &Transaction,
    w: Window,
    dims: RangeInclusive<i64>,
) -> rusqlite::Result<DailySums> {
    let mut sums = DailySums::default();
    let mut st = tx.prepare_cached(
        "SELECT day, dim, key, bans FROM daily
         WHERE day BETWEEN ?1 AND ?2 AND dim BETWEEN ?3 AND ?4",
    )?;
    let mut rows = st.query(params![w.first.0, w.last.0, dims.start(), dims.end()])?;
    while let Some(r) = rows.next()? {
        let day = Day(r.get(0)?);
        let d: i64 = r.get(1)?;
        let key = r.get_ref(2)?.as_str()?;
        let bans = u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0);
        match d {
            dim::TOTAL => day_of(&mut sums.days, day).total += bans,
            dim::COUNTRY => {
                *day_of(&mut sums.days, day)
                    .by_country
                    .entry(key.to_string())
                    .or_default() += bans
            }
            dim::JAIL => {
                *day_of(&mut sums.days, day)
                    .by_jail
                    .entry(key.to_string())
                    .or_default() += bans
            }
            dim::ASN => add(&mut sums.by_asn, key, bans),
            dim::HOST => host(&mut sums.hosts, key).bans += bans,
            dim::HOST_JAIL => {
                if let Some((h, jail)) = key.split_once('\t') {
                    *host(&mut sums.hosts, h)
                        .by_jail
                        .entry(jail.to_string())
                        .or_default() += bans;
                }
            }
            _ => {}
        }
    }
    Ok(sums)
}

/// Adds `n` to `key`, allocating the key only the first time.
fn add(map: &mut HashMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_string(), n);
        }
    }
}

fn day_of(days: &mut BTreeMap<Day, DayReport>, day: Day) -> &mut DayReport {
    days.entry(day).or_insert_with(|| DayReport {
        day,
        ..DayReport::default()
    })
}

fn host<'a>(hosts: &'a mut BTreeMap<String, HostCount>, name: &str) -> &'a mut HostCount {
    hosts.entry(name.to_string()).or_insert_with(|| HostCount {
        host: name.to_string(),
        bans: 0,
        by_jail: BTreeMap::new(),
        last_seen: None,
    })
}

/// Bans of one key over the window, and the day of its latest ban.
#[derive(Clone, Copy)]
struct Sum {
    bans: i64,
    last_at: i64,
    last_day: i32,
}

/// Bans per id of `table` (`daily_targets` by `target`, `daily_networks` by `network`) over
/// the window; its length is the number of distinct ids.
fn sum_ids(
    tx: &Transaction,
    table: &str,
    column: &str,
    w: Window,
) -> rusqlite::Result<HashMap<i64, Sum>> {
    let mut sums: HashMap<i64, Sum> = HashMap::new();
    let mut st = tx.prepare_cached(&format!(
        "SELECT day, {column}, bans, last_at FROM {table} WHERE day BETWEEN ?1 AND ?2"
    ))?;
    let mut rows = st.query(params![w.first.0, w.last.0])?;
    while let Some(r) = rows.next()? {
        let (day, id, bans, last_at): (i32, i64, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let s = sums.entry(id).or_insert(Sum {
            bans: 0,
            last_at: i64::MIN,
            last_day: day,
        });
        s.bans += bans;
        if last_at >= s.last_at {
            s.last_at = last_at;
            s.last_day = day;
        }
    }
    Ok(sums)
}

/// The `limit` ids with the most bans, most recent first among equals.
fn head(sums: HashMap<i64, Sum>, limit: usize) -> Vec<(i64, Sum)> {
    let mut v: Vec<(i64, Sum)> = sums.into_iter().collect();
    let order = |a: &(i64, Sum), b: &(i64, Sum)| {
        b.1.bans
            .cmp(&a.1.bans)
            .then(b.1.last_at.cmp(&a.1.last_at))
            .then(a.0.cmp(&b.0))
    };
    if v.len() > limit && limit > 0 {
        v.select_nth_unstable_by(limit - 1, order);
    }
    v.truncate(limit);
    v.sort_by(order);
    v
}

pub(super) fn report(c: &mut Connection, w: Window) -> rusqlite::Result<Report> {
    let tx = c.transaction()?; // one snapshot for every statement
    let sums = scan_daily(&tx, w, dim::TOTAL..=dim::ASN)?;
    // Distinct targets: a set of integer ids (cheaper than COUNT(DISTINCT), which sorts).
    let mut distinct: HashSet<i64> = HashSet::new();
    {
        let mut st =
            tx.prepare_cached("SELECT target FROM daily_targets WHERE day BETWEEN ?1 AND ?2")?;
        let mut rows = st.query(params![w.first.0, w.last.0])?;
        while let Some(r) = rows.next()? {
            distinct.insert(r.get(0)?);
        }
    }
    Ok(report_of(w, sums.days, sums.by_asn, distinct.len()))
}

fn report_of(
    w: Window,
    days: BTreeMap<Day, DayReport>,
    by_asn: HashMap<String, u64>,
    targets: usize,
) -> Report {
    let mut report = Report::from_days(w, days);
    report.by_asn = by_asn.into_iter().collect();
    report.targets = targets as u64;
    report
}

pub(super) fn top_asns(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<AsnCount>> {
    let tx = c.transaction()?;
    let sums = scan_daily(&tx, w, dim::ASN..=dim::ASN)?;
    asns_of(
        &tx,
        sums.by_asn.iter().map(|(k, v)| (k.as_str(), *v)),
        limit,
    )
}

/// The `limit` ASes with the most bans of `sums`, with their organisation.
fn asns_of<'a>(
    tx: &Transaction,
    sums: impl Iterator<Item = (&'a str, u64)>,
    limit: usize,
) -> rusqlite::Result<Vec<AsnCount>> {
    let rows = sums
        .map(|(asn, bans)| AsnCount {
            asn: asn.to_string(),
            org: None,
            bans,
        })
        .collect();
    let mut rows = top(rows, limit, |r| (r.bans, r.asn.as_str()));
    let names = orgs(tx, rows.iter().filter_map(|r| parse_asn_key(&r.asn)))?;
    for r in &mut rows {
        r.org = parse_asn_key(&r.asn).and_then(|n| names.get(&n).cloned());
    }
    Ok(rows)
}

fn orgs(c: &Connection, asns: impl Iterator<Item = u32>) -> rusqlite::Result<HashMap<u32, String>> {
    let mut st = c.prepare_cached("SELECT org FROM asn_names WHERE asn = ?1")?;
    let mut out = HashMap::new();
    for asn in asns {
        if out.contains_key(&asn) {
            continue;
        }
        let mut rows = st.query([asn])?;
        if let Some(r) = rows.next()? {
            out.insert(asn, r.get(0)?);
        }
    }
    Ok(out)
}

pub(super) fn top_networks(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<NetworkCount>> {
    let tx = c.transaction()?;
    let sums = sum_ids(&tx, "daily_networks", "network", w)?;
    networks_of(&tx, head(sums, limit))
}

/// The rows of the networks in `head`, as their latest ban described them.
fn networks_of(tx: &Transaction, head: Vec<(i64, Sum)>) -> rusqlite::Result<Vec<NetworkCount>> {
    let mut out = Vec::with_capacity(head.len());
    {
        let mut st = tx.prepare_cached(
            "SELECT n.network, d.country, d.asn FROM daily_networks d
             JOIN networks n ON n.id = d.network WHERE d.day = ?1 AND d.network = ?2",
        )?;
        for (id, s) in &head {
            let (network, country, asn): (String, String, Option<u32>) = st
                .query_row(params![s.last_day, id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            out.push(NetworkCount {
                network,
                bans: u64::try_from(s.bans).unwrap_or(0),
                country,
                asn: asn_key(asn),
                org: None,
            });
        }
    }
    let names = orgs(tx, out.iter().filter_map(|n| parse_asn_key(&n.asn)))?;
    for n in &mut out {
        n.org = parse_asn_key(&n.asn).and_then(|a| names.get(&a).cloned());
    }
    Ok(out)
}

pub(super) fn top_offenders(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<Offender>> {
    let tx = c.transaction()?;
    let sums = sum_ids(&tx, "daily_targets", "target", w)?;
    offenders_of(&tx, head(sums, limit))
}

/// The rows of the targets in `head`, as their latest ban described them.
fn offenders_of(tx: &Transaction, head: Vec<(i64, Sum)>) -> rusqlite::Result<Vec<Offender>> {
    let mut out = Vec::with_capacity(head.len());
    let mut st = tx.prepare_cached(
        "SELECT t.target, d.country, d.asn, d.jail FROM daily_targets d
         JOIN targets t ON t.id = d.target WHERE d.day = ?1 AND d.target = ?2",
    )?;
    for (id, s) in &head {
        let (target, country, asn, jail): (String, String, Option<u32>, String) = st
            .query_row(params![s.last_day, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        out.push(Offender {
            target,
            bans: u64::try_from(s.bans).unwrap_or(0),
            last_seen: s.last_at,
            country,
            asn: asn_key(asn),
            jail,
        });
    }
    Ok(out)
}

pub(super) fn hosts(c: &mut Connection, w: Window) -> rusqlite::Result<Vec<HostCount>> {
    let tx = c.transaction()?;
    let sums = scan_daily(&tx, w, dim::HOST..=dim::HOST_JAIL)?;
    hosts_of(&tx, sums.hosts)
}

/// `hosts` with the time of each one's latest ban, most bans first.
fn hosts_of(
    tx: &Transaction,
    mut hosts: BTreeMap<String, HostCount>,
) -> rusqlite::Result<Vec<HostCount>> {
    let mut st = tx.prepare_cached("SELECT host, last_at FROM marks")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let name = r.get_ref(0)?.as_str()?;
        if let Some(h) = hosts.get_mut(name) {
            h.last_seen = Some(r.get(1)?);
        }
    }
    Ok(top(hosts.into_values().collect(), usize::MAX, |h| {
        (h.bans, h.host.as_str())
    }))
}

/// Every answer of the dashboard in one snapshot, each rollup table read once: `daily` for
/// the report, the ASes and the hosts; `daily_targets` for the distinct count and the
/// offenders; `daily_networks` for the networks.
pub(super) fn summary(c: &mut Connection, w: Window, limit: usize) -> rusqlite::Result<Summary> {
    let tx = c.transaction()?;
    let daily = scan_daily(&tx, w, dim::TOTAL..=dim::HOST_JAIL)?;
    let targets = sum_ids(&tx, "daily_targets", "target", w)?;
    let distinct = targets.len();
    let top_offenders = offenders_of(&tx, head(targets, limit))?;
    let networks = sum_ids(&tx, "daily_networks", "network", w)?;
    let top_networks = networks_of(&tx, head(networks, limit))?;
    let top_asns = asns_of(
        &tx,
        daily.by_asn.iter().map(|(k, v)| (k.as_str(), *v)),
        limit,
    )?;
    let hosts = hosts_of(&tx, daily.hosts)?;
    Ok(Summary {
        report: report_of(w, daily.days, daily.by_asn, distinct),
        top_asns,
        top_networks,
        top_offenders,
        hosts,
    })
}
