//! Queries over `stats.db`: every one reads the rollups of the window's days, never the raw
//! events, so its cost follows the number of days and distinct keys per day, not of bans.
//! Sums and distinct counts are done in hash maps over integer ids: SQLite's GROUP BY and
//! COUNT(DISTINCT) sort every row, which costs more than the rows' reading.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{Connection, params};

use super::dim;
use crate::model::{Day, asn_key, parse_asn_key};
use crate::report::{AsnCount, DayReport, HostCount, NetworkCount, Offender, Report, Window, top};

pub(super) fn report(c: &mut Connection, w: Window) -> rusqlite::Result<Report> {
    let tx = c.transaction()?; // one snapshot for every statement
    let mut days: BTreeMap<Day, DayReport> = BTreeMap::new();
    let mut by_asn: HashMap<String, u64> = HashMap::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT day, dim, key, bans FROM daily
             WHERE day BETWEEN ?1 AND ?2 AND dim <= ?3",
        )?;
        let mut rows = st.query(params![w.first.0, w.last.0, dim::ASN])?;
        while let Some(r) = rows.next()? {
            let day = Day(r.get(0)?);
            let d: i64 = r.get(1)?;
            let key = r.get_ref(2)?.as_str()?;
            let bans = u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0);
            let entry = days.entry(day).or_insert_with(|| DayReport {
                day,
                ..DayReport::default()
            });
            match d {
                dim::TOTAL => entry.total += bans,
                dim::COUNTRY => *entry.by_country.entry(key.to_string()).or_default() += bans,
                dim::JAIL => *entry.by_jail.entry(key.to_string()).or_default() += bans,
                dim::ASN => add(&mut by_asn, key, bans),
                _ => {}
            }
        }
    }
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
    let mut report = Report::from_days(w, days);
    report.by_asn = by_asn.into_iter().collect();
    report.targets = distinct.len() as u64;
    Ok(report)
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

pub(super) fn top_asns(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<AsnCount>> {
    let mut sums: HashMap<String, u64> = HashMap::new();
    {
        let mut st = c.prepare_cached(
            "SELECT key, bans FROM daily WHERE day BETWEEN ?1 AND ?2 AND dim = ?3",
        )?;
        let mut rows = st.query(params![w.first.0, w.last.0, dim::ASN])?;
        while let Some(r) = rows.next()? {
            let n = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
            add(&mut sums, r.get_ref(0)?.as_str()?, n);
        }
    }
    let rows = sums
        .into_iter()
        .map(|(asn, bans)| AsnCount {
            asn,
            org: None,
            bans,
        })
        .collect();
    let mut rows = top(rows, limit, |r| (r.bans, r.asn.as_str()));
    let names = orgs(c, rows.iter().filter_map(|r| parse_asn_key(&r.asn)))?;
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

/// Bans of one key over the window, and the day of its latest ban.
#[derive(Clone, Copy)]
struct Sum {
    bans: i64,
    last_at: i64,
    last_day: i32,
}

/// The `limit` ids of `table` (`daily_targets` by `target`, `daily_networks` by `network`)
/// with the most bans over the window, most recent first among equals. Summed in a hash
/// map: SQLite's GROUP BY sorts every row first.
fn top_ids(
    c: &Connection,
    table: &str,
    column: &str,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, Sum)>> {
    let mut sums: HashMap<i64, Sum> = HashMap::new();
    let mut st = c.prepare_cached(&format!(
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
    let mut v: Vec<(i64, Sum)> = sums.into_iter().collect();
    let order = |a: &(i64, Sum), b: &(i64, Sum)| {
        b.1.bans
            .cmp(&a.1.bans)
            .then(b.1.last_at.cmp(&a.1.last_at))
            .then(a.0.cmp(&b.0))
    };
    if v.len() > limit && limit > 0 {
        v.select_nth_unstable_by(limit - 1, order);
        v.truncate(limit);
    }
    v.truncate(limit);
    v.sort_by(order);
    Ok(v)
}

pub(super) fn top_networks(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<NetworkCount>> {
    let tx = c.transaction()?;
    let head = top_ids(&tx, "daily_networks", "network", w, limit)?;
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
    let names = orgs(&tx, out.iter().filter_map(|n| parse_asn_key(&n.asn)))?;
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
    let head = top_ids(&tx, "daily_targets", "target", w, limit)?;
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
    let mut hosts: BTreeMap<String, HostCount> = BTreeMap::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT dim, key, SUM(bans) FROM daily
             WHERE day BETWEEN ?1 AND ?2 AND dim IN (?3, ?4) GROUP BY dim, key",
        )?;
        let mut rows = st.query(params![w.first.0, w.last.0, dim::HOST, dim::HOST_JAIL])?;
        while let Some(r) = rows.next()? {
            let d: i64 = r.get(0)?;
            let key: String = r.get(1)?;
            let n = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
            let (host, jail) = match key.split_once('\t') {
                Some((h, j)) if d == dim::HOST_JAIL => (h.to_string(), Some(j.to_string())),
                _ => (key, None),
            };
            let h = hosts.entry(host.clone()).or_insert_with(|| new_host(host));
            match jail {
                Some(j) => *h.by_jail.entry(j).or_default() += n,
                None => h.bans += n,
            }
        }
        let mut st = tx.prepare_cached("SELECT host, last_at FROM marks")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let host: String = r.get(0)?;
            if let Some(h) = hosts.get_mut(&host) {
                h.last_seen = Some(r.get(1)?);
            }
        }
    }
    Ok(top(hosts.into_values().collect(), usize::MAX, |h| {
        (h.bans, h.host.as_str())
    }))
}

fn new_host(host: String) -> HostCount {
    HostCount {
        host,
        bans: 0,
        by_jail: BTreeMap::new(),
        last_seen: None,
    }
}
