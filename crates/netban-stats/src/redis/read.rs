//! Queries over the Redis keys: one pipeline (one round trip) per step; sums over the
//! window's per-day hashes (ASes, offenders, networks) run in `sum_top.lua`, which sends back
//! only the head of the list.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use redis::Script;

use super::RedisBackend;
use crate::error::StatsError;
use crate::model::{Day, UNKNOWN, parse_asn_key};
use crate::report::{
    AsnCount, Counts, DayReport, HostCount, NetworkCount, Offender, Report, Window, top,
};

static SUM_TOP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("sum_top.lua")));
static ROLL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("roll.lua")));

/// The rolling lists, in the order of `roll.lua`.
const ROLLED: [&str; 3] = ["offenders", "networks", "asns"];

/// Makes the rolling window end on `last` when it ended earlier, and returns the head of
/// the rolling list `what` (`offenders`, `networks`, `asns`; `""` for none; `limit` 0: all)
/// when it ends on `last`. `None`: the window ends on another (later) day, so the caller
/// sums the days itself.
pub(super) async fn roll(
    b: &RedisBackend,
    last: Day,
    what: &str,
    limit: usize,
) -> Result<Option<Vec<(String, u64)>>, StatsError> {
    use std::sync::atomic::Ordering;
    if what.is_empty() && b.rolled_to.load(Ordering::Relaxed) >= last.0 {
        return Ok(None);
    }
    let n = super::ROLL_DAYS as i32;
    let window = Window {
        first: last.minus(n - 1),
        last,
    };
    let before = Window {
        first: last.minus(2 * n - 1),
        last: last.minus(n),
    };
    let mut inv = ROLL.prepare_invoke();
    inv.key(b.keys.roll("through"));
    for list in ROLLED {
        inv.key(b.keys.roll(list));
        for days in [window, before] {
            for day in days.each_day() {
                inv.key(b.keys.day(day, list));
            }
        }
    }
    let index = ROLLED.iter().position(|l| *l == what).map_or(0, |i| i + 1);
    let count: i64 = if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(-1)
    };
    inv.arg(last.0).arg(index).arg(count);
    let mut c = b.conn();
    let flat: Vec<String> = inv
        .invoke_async(&mut c)
        .await
        .map_err(StatsError::redis("moving the rolling window"))?;
    let through: i32 = flat
        .first()
        .and_then(|t| t.parse().ok())
        .unwrap_or(i32::MIN);
    b.rolled_to.fetch_max(through, Ordering::Relaxed);
    if through != last.0 || index == 0 {
        return Ok(None);
    }
    Ok(Some(
        flat[1..]
            .chunks_exact(2)
            .map(|p| {
                (
                    p[0].clone(),
                    p[1].parse::<f64>().unwrap_or(0.0).max(0.0) as u64,
                )
            })
            .collect(),
    ))
}

/// The window's sums of `what` (`asns`, `offenders`, `networks`), largest first, `limit`
/// of them (0: all): from the rolling list when the window is the rolling one, else summed.
async fn window_sums(
    b: &RedisBackend,
    w: Window,
    what: &str,
    limit: usize,
) -> Result<Vec<(String, u64)>, StatsError> {
    if w.days() == super::ROLL_DAYS
        && let Some(mut head) = roll(b, w.last, what, limit).await?
    {
        // ZREVRANGE breaks ties by member, descending; the summed path by member, ascending.
        head.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        return Ok(head);
    }
    sum_top(b, w, what, limit).await
}

/// The `limit` members (0: all) with the largest sums over the window's `what` hashes.
async fn sum_top(
    b: &RedisBackend,
    w: Window,
    what: &str,
    limit: usize,
) -> Result<Vec<(String, u64)>, StatsError> {
    let mut inv = SUM_TOP.prepare_invoke();
    for day in w.each_day() {
        inv.key(b.keys.day(day, what));
    }
    inv.arg(limit);
    let mut c = b.conn();
    let flat: Vec<String> = inv
        .invoke_async(&mut c)
        .await
        .map_err(StatsError::redis("summing the window"))?;
    Ok(flat
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].parse().unwrap_or(0)))
        .collect())
}

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
    let by_asn: Counts = window_sums(b, w, "asns", 0).await?.into_iter().collect();
    let mut days = BTreeMap::new();
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
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut rows: Vec<AsnCount> = window_sums(b, w, "asns", limit)
        .await?
        .into_iter()
        .map(|(asn, bans)| AsnCount {
            asn,
            org: None,
            bans,
        })
        .collect();
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

/// The head of the sums of the window's per-day hashes `what`, with the latest `info` entry
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
    let head = window_sums(b, w, what, limit).await?;
    if head.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = b.conn();
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
        .map(|((m, bans), l)| (m, bans, l.map(|(_, v)| v)))
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
