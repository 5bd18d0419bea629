//! Queries over `stats.db`: every one reads the rollups of the window's days, never the raw
//! events, so its cost follows the number of days and distinct keys, not of bans.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, params};

use super::dim;
use crate::model::{Day, asn_key};
use crate::report::{AsnCount, DayReport, HostCount, NetworkCount, Offender, Report, Window, top};

pub(super) fn report(c: &mut Connection, w: Window) -> rusqlite::Result<Report> {
    let tx = c.transaction()?; // one snapshot for every statement
    let mut days: BTreeMap<Day, DayReport> = BTreeMap::new();
    let mut by_asn = BTreeMap::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT day, dim, key, bans FROM daily
             WHERE day BETWEEN ?1 AND ?2 AND dim <= ?3",
        )?;
        let mut rows = st.query(params![w.first.0, w.last.0, dim::ASN])?;
        while let Some(r) = rows.next()? {
            let day = Day(r.get(0)?);
            let d: i64 = r.get(1)?;
            let key: String = r.get(2)?;
            let bans = u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0);
            let entry = days.entry(day).or_insert_with(|| DayReport {
                day,
                ..DayReport::default()
            });
            match d {
                dim::TOTAL => entry.total += bans,
                dim::COUNTRY => *entry.by_country.entry(key).or_default() += bans,
                dim::JAIL => *entry.by_jail.entry(key).or_default() += bans,
                dim::ASN => *by_asn.entry(key).or_default() += bans,
                _ => {}
            }
        }
    }
    let targets: i64 = tx.query_row(
        "SELECT COUNT(DISTINCT target) FROM daily_targets WHERE day BETWEEN ?1 AND ?2",
        params![w.first.0, w.last.0],
        |r| r.get(0),
    )?;
    let mut report = Report::from_days(w, days);
    report.by_asn = by_asn;
    report.targets = u64::try_from(targets).unwrap_or(0);
    Ok(report)
}

pub(super) fn top_asns(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<AsnCount>> {
    let mut st = c.prepare_cached(
        "SELECT d.key, SUM(d.bans) AS n, a.org FROM daily d
         LEFT JOIN asn_names a ON a.asn = CAST(substr(d.key, 3) AS INTEGER) AND d.key <> 'unknown'
         WHERE d.day BETWEEN ?1 AND ?2 AND d.dim = ?3
         GROUP BY d.key ORDER BY n DESC, d.key LIMIT ?4",
    )?;
    let rows = st.query_map(params![w.first.0, w.last.0, dim::ASN, limit as i64], |r| {
        Ok(AsnCount {
            asn: r.get(0)?,
            bans: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            org: r.get(2)?,
        })
    })?;
    rows.collect()
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
    // With max(), SQLite takes the bare columns from the row holding the maximum: the
    // country and AS of the latest ban.
    let mut st = c.prepare_cached(
        "SELECT network, SUM(bans) AS n, max(last_at), country, asn FROM daily_networks
         WHERE day BETWEEN ?1 AND ?2 GROUP BY network ORDER BY n DESC, network LIMIT ?3",
    )?;
    let rows: Vec<(String, i64, String, Option<u32>)> = st
        .query_map(params![w.first.0, w.last.0, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let names = orgs(c, rows.iter().filter_map(|r| r.3))?;
    Ok(rows
        .into_iter()
        .map(|(network, n, country, asn)| NetworkCount {
            network,
            bans: u64::try_from(n).unwrap_or(0),
            country,
            asn: asn_key(asn),
            org: asn.and_then(|a| names.get(&a).cloned()),
        })
        .collect())
}

pub(super) fn top_offenders(
    c: &mut Connection,
    w: Window,
    limit: usize,
) -> rusqlite::Result<Vec<Offender>> {
    let mut st = c.prepare_cached(
        "SELECT target, SUM(bans) AS n, max(last_at) AS l, country, asn, jail FROM daily_targets
         WHERE day BETWEEN ?1 AND ?2 GROUP BY target ORDER BY n DESC, l DESC, target LIMIT ?3",
    )?;
    let rows = st.query_map(params![w.first.0, w.last.0, limit as i64], |r| {
        Ok(Offender {
            target: r.get(0)?,
            bans: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            last_seen: r.get(2)?,
            country: r.get(3)?,
            asn: asn_key(r.get(4)?),
            jail: r.get(5)?,
        })
    })?;
    rows.collect()
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
