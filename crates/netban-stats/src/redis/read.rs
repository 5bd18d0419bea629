//! Queries over the Redis keys: one pipeline (one round trip) per query where possible; top
//! lists union the window's per-day sorted sets server-side into a short-lived key (inside
//! MULTI, deleted in the same transaction) and fetch only the head.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use super::RedisBackend;
use crate::error::StatsError;
use crate::model::{Day, UNKNOWN, parse_asn_key};
use crate::report::{
    AsnCount, Counts, DayReport, HostCount, NetworkCount, Offender, Report, Window, top,
};

/// Per-day `counts` hashes of the window, oldest first.
async fn day_counts(
    b: &RedisBackend,
    w: Window,
) -> Result<Vec<(Day, HashMap<String, u64>)>, StatsError> {
    let mut p = redis::pipe();
    for day in w.each_day() {
        p.cmd("HGETALL").arg(b.keys.day(day, "counts"));
    }
    let mut c = b.conn();
    let rows: Vec<HashMap<String, u64>> = p
        .query_async(&mut c)
        .await
        .map_err(StatsError::redis("reading daily counts"))?;
    Ok(w.each_day().zip(rows).collect())
}

pub(super) async fn report(b: &RedisBackend, w: Window) -> Result<Report, StatsError> {
    let rows = day_counts(b, w).await?;
    let mut days = BTreeMap::new();
    let mut by_asn = Counts::new();
    for (day, fields) in rows {
        let mut d = DayReport {
            day,
            ..DayReport::default()
        };
        for (field, n) in fields {
            match field.split_once(':') {
                None if field == "t" => d.total = n,
                Some(("c", k)) => *d.by_country.entry(k.to_string()).or_default() += n,
                Some(("j", k)) => *d.by_jail.entry(k.to_string()).or_default() += n,
                Some(("a", k)) => *by_asn.entry(k.to_string()).or_default() += n,
                _ => {}
            }
        }
        days.insert(day, d);
    }
    let hlls: Vec<String> = w.each_day().map(|d| b.keys.day(d, "targets")).collect();
    let mut c = b.conn();
    let targets: u64 = redis::cmd("PFCOUNT")
        .arg(&hlls)
        .query_async(&mut c)
        .await
        .map_err(StatsError::redis("counting distinct targets"))?;
    let mut r = Report::from_days(w, days);
    r.by_asn = by_asn;
    r.targets = targets;
    Ok(r)
}

pub(super) async fn top_asns(
    b: &RedisBackend,
    w: Window,
    limit: usize,
) -> Result<Vec<AsnCount>, StatsError> {
    let mut sums: HashMap<String, u64> = HashMap::new();
    for (_, fields) in day_counts(b, w).await? {
        for (field, n) in fields {
            if let Some(k) = field.strip_prefix("a:") {
                *sums.entry(k.to_string()).or_default() += n;
            }
        }
    }
    let rows: Vec<AsnCount> = sums
        .into_iter()
        .map(|(asn, bans)| AsnCount {
            asn,
            org: None,
            bans,
        })
        .collect();
    let mut rows = top(rows, limit, |r| (r.bans, r.asn.as_str()));
    let numbers: Vec<String> = rows
        .iter()
        .map(|r| {
            parse_asn_key(&r.asn)
                .map(|n| n.to_string())
                .unwrap_or_default()
        })
        .collect();
    if !rows.is_empty() {
        let mut c = b.conn();
        let orgs: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(b.keys.asorg())
            .arg(&numbers)
            .query_async(&mut c)
            .await
            .map_err(StatsError::redis("reading AS organisations"))?;
        for (r, org) in rows.iter_mut().zip(orgs) {
            r.org = org.filter(|_| r.asn != UNKNOWN);
        }
    }
    Ok(rows)
}

/// A key name nobody else uses, for a union that lives only inside one MULTI.
fn scratch_key(b: &RedisBackend) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}:tmp:{}:{}:{}",
        b.keys.prefix(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// The head of the union of the window's per-day zsets `what`, with the latest `info` entry
/// of each member across the window.
async fn top_members(
    b: &RedisBackend,
    w: Window,
    what: &str,
    info: &str,
    limit: usize,
) -> Result<Vec<(String, u64, Option<String>)>, StatsError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = w.each_day().map(|d| b.keys.day(d, what)).collect();
    let tmp = scratch_key(b);
    let mut c = b.conn();
    let (head,): (Vec<(String, f64)>,) = redis::pipe()
        .atomic()
        .cmd("ZUNIONSTORE")
        .arg(&tmp)
        .arg(keys.len())
        .arg(&keys)
        .ignore()
        .cmd("ZREVRANGE")
        .arg(&tmp)
        .arg(0)
        .arg(limit.saturating_sub(1))
        .arg("WITHSCORES")
        .cmd("DEL")
        .arg(&tmp)
        .ignore()
        .query_async(&mut c)
        .await
        .map_err(StatsError::redis("ranking a top list"))?;
    if head.is_empty() {
        return Ok(Vec::new());
    }
    let members: Vec<&str> = head.iter().map(|(m, _)| m.as_str()).collect();
    let mut p = redis::pipe();
    for day in w.each_day() {
        p.cmd("HMGET").arg(b.keys.day(day, info)).arg(&members);
    }
    let per_day: Vec<Vec<Option<String>>> = p
        .query_async(&mut c)
        .await
        .map_err(StatsError::redis("reading top list details"))?;
    let mut latest: Vec<Option<(i64, String)>> = vec![None; head.len()];
    for row in per_day {
        for (slot, v) in latest.iter_mut().zip(row) {
            let Some(v) = v else { continue };
            let at = v
                .split('\t')
                .next()
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(0);
            if slot.as_ref().is_none_or(|(a, _)| at >= *a) {
                *slot = Some((at, v));
            }
        }
    }
    Ok(head
        .into_iter()
        .zip(latest)
        .map(|((m, score), l)| (m, score.max(0.0) as u64, l.map(|(_, v)| v)))
        .collect())
}

/// Fields of an info entry: `at`, then the rest.
fn info_fields(v: &Option<String>) -> (i64, Vec<String>) {
    let mut it = v.as_deref().unwrap_or("").split('\t');
    let at = it.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    (at, it.map(str::to_string).collect())
}

fn field(fields: &[String], i: usize) -> String {
    fields
        .get(i)
        .cloned()
        .unwrap_or_else(|| UNKNOWN.to_string())
}

pub(super) async fn top_offenders(
    b: &RedisBackend,
    w: Window,
    limit: usize,
) -> Result<Vec<Offender>, StatsError> {
    let rows = top_members(b, w, "offenders", "tinfo", limit).await?;
    let mut out: Vec<Offender> = rows
        .into_iter()
        .map(|(target, bans, info)| {
            let (at, f) = info_fields(&info);
            Offender {
                target,
                bans,
                last_seen: at,
                country: field(&f, 0),
                asn: field(&f, 1),
                jail: field(&f, 2),
            }
        })
        .collect();
    // Same order as SQLite within the head: bans, then the most recent, then the target.
    out.sort_by(|a, b| {
        b.bans
            .cmp(&a.bans)
            .then(b.last_seen.cmp(&a.last_seen))
            .then_with(|| a.target.cmp(&b.target))
    });
    Ok(out)
}

pub(super) async fn top_networks(
    b: &RedisBackend,
    w: Window,
    limit: usize,
) -> Result<Vec<NetworkCount>, StatsError> {
    let rows = top_members(b, w, "networks", "ninfo", limit).await?;
    let mut out: Vec<NetworkCount> = rows
        .into_iter()
        .map(|(network, bans, info)| {
            let (_, f) = info_fields(&info);
            NetworkCount {
                network,
                bans,
                country: field(&f, 0),
                asn: field(&f, 1),
                org: None,
            }
        })
        .collect();
    out.sort_by(|a, b| b.bans.cmp(&a.bans).then_with(|| a.network.cmp(&b.network)));
    let numbers: Vec<String> = out
        .iter()
        .map(|r| {
            parse_asn_key(&r.asn)
                .map(|n| n.to_string())
                .unwrap_or_default()
        })
        .collect();
    if !out.is_empty() {
        let mut c = b.conn();
        let orgs: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(b.keys.asorg())
            .arg(&numbers)
            .query_async(&mut c)
            .await
            .map_err(StatsError::redis("reading AS organisations"))?;
        for (r, org) in out.iter_mut().zip(orgs) {
            r.org = org.filter(|_| r.asn != UNKNOWN);
        }
    }
    Ok(out)
}

pub(super) async fn hosts(b: &RedisBackend, w: Window) -> Result<Vec<HostCount>, StatsError> {
    let mut p = redis::pipe();
    for day in w.each_day() {
        p.cmd("HGETALL").arg(b.keys.day(day, "hosts"));
    }
    p.cmd("HGETALL").arg(b.keys.seen());
    let mut c = b.conn();
    let mut rows: Vec<HashMap<String, u64>> = p
        .query_async(&mut c)
        .await
        .map_err(StatsError::redis("reading per-host counts"))?;
    let seen = rows.pop().unwrap_or_default();
    let mut hosts: BTreeMap<String, HostCount> = BTreeMap::new();
    for fields in rows {
        for (f, n) in fields {
            if let Some(h) = f.strip_prefix("h:") {
                host_entry(&mut hosts, h).bans += n;
            } else if let Some((h, j)) = f.strip_prefix("hj:").and_then(|x| x.split_once('\t')) {
                *host_entry(&mut hosts, h)
                    .by_jail
                    .entry(j.to_string())
                    .or_default() += n;
            }
        }
    }
    for (host, at) in seen {
        if let Some(h) = hosts.get_mut(&host) {
            h.last_seen = i64::try_from(at).ok();
        }
    }
    Ok(top(hosts.into_values().collect(), usize::MAX, |h| {
        (h.bans, h.host.as_str())
    }))
}

fn host_entry<'a>(hosts: &'a mut BTreeMap<String, HostCount>, host: &str) -> &'a mut HostCount {
    hosts.entry(host.to_string()).or_insert_with(|| HostCount {
        host: host.to_string(),
        bans: 0,
        by_jail: Counts::new(),
        last_seen: None,
    })
}
