//! Recording into Redis (one `record.lua` call per host and chunk) and pruning old days.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use redis::Script;

use super::{DAY_KEYS, RedisBackend};
use crate::backend::{Recorded, check_host};
use crate::error::StatsError;
use crate::model::{Day, EnrichedEvent};

static RECORD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("record.lua")));

/// Events per script call: keeps one call's arguments and run time small (Redis runs a script
/// alone; a chunk of 1000 bans takes a few milliseconds).
const CHUNK: usize = 1000;

pub(super) async fn record(
    b: &RedisBackend,
    events: &[EnrichedEvent],
) -> Result<Recorded, StatsError> {
    let mut by_host: BTreeMap<&str, Vec<&EnrichedEvent>> = BTreeMap::new();
    for e in events {
        check_host(&e.host)?;
        by_host.entry(e.host.as_str()).or_default().push(e);
    }
    // Move the rolling window first, so this batch's bans of its days go into it too; but
    // never past tomorrow (UTC): a host with a wrong clock must not drag the fleet's window
    // into the future.
    let tomorrow = Day::of(unix_now(), &jiff::tz::TimeZone::UTC).minus(-1);
    if let Some(last) = events
        .iter()
        .map(|e| e.day)
        .filter(|d| *d <= tomorrow)
        .max()
    {
        super::read::roll(b, last, "", 0).await?;
    }
    let mut out = Recorded::default();
    for (host, mut evs) in by_host {
        evs.sort_by_key(|e| e.id);
        for chunk in evs.chunks(CHUNK) {
            let (applied, dups) = record_chunk(b, host, chunk).await?;
            out.applied += applied;
            out.duplicates += dups;
        }
    }
    Ok(out)
}

/// When a day's keys expire: the end of the day (plus a day for any zone offset), plus the
/// retention.
fn expire_at(day: Day, retention_days: u32) -> i64 {
    (i64::from(day.0) + 2 + i64::from(retention_days)) * 86_400
}

async fn record_chunk(
    b: &RedisBackend,
    host: &str,
    chunk: &[&EnrichedEvent],
) -> Result<(usize, usize), StatsError> {
    let mut days: Vec<Day> = chunk.iter().map(|e| e.day).collect();
    days.sort();
    days.dedup();
    let mut inv = RECORD.prepare_invoke();
    inv.key(b.keys.mark())
        .key(b.keys.seen())
        .key(b.keys.asorg())
        .key(b.keys.days())
        .key(b.keys.roll("through"))
        .key(b.keys.roll("offenders"))
        .key(b.keys.roll("networks"))
        .key(b.keys.roll("asns"));
    for day in &days {
        for what in DAY_KEYS {
            inv.key(b.keys.day(*day, what));
        }
    }
    inv.arg(host).arg(days.len());
    for day in &days {
        inv.arg(day.to_string())
            .arg(day.0)
            .arg(expire_at(*day, b.retention_days));
    }
    for e in chunk {
        // `days` is sorted and holds every event's day.
        let index = days.binary_search(&e.day).unwrap_or(0) + 1;
        inv.arg(e.id)
            .arg(e.at)
            .arg(index)
            .arg(e.target.to_string())
            .arg(&e.jail)
            .arg(&e.country)
            .arg(e.asn.map(|a| a.to_string()).unwrap_or_default())
            .arg(e.org.as_deref().unwrap_or(""))
            .arg(&e.network);
    }
    let mut c = b.conn();
    let (applied, dups): (usize, usize) = inv
        .invoke_async(&mut c)
        .await
        .map_err(StatsError::redis("recording bans"))?;
    Ok((applied, dups))
}

/// Deletes the keys of every day before `keep_from` (expiry would remove them later anyway).
pub(super) async fn prune(b: &RedisBackend, keep_from: Day) -> Result<u64, StatsError> {
    let mut c = b.conn();
    let old: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(b.keys.days())
        .arg("-inf")
        .arg(format!("({}", keep_from.0))
        .query_async(&mut c)
        .await
        .map_err(StatsError::redis("listing days to prune"))?;
    let mut gone = 0u64;
    for name in old {
        let Some(day) = Day::parse(&name) else {
            continue;
        };
        let keys: Vec<String> = DAY_KEYS.iter().map(|w| b.keys.day(day, w)).collect();
        let (n, _): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&keys)
            .cmd("ZREM")
            .arg(b.keys.days())
            .arg(&name)
            .query_async(&mut c)
            .await
            .map_err(StatsError::redis("pruning a day"))?;
        gone += n;
    }
    Ok(gone)
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}
