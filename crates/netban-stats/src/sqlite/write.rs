//! Recording and pruning in `stats.db`.
//!
//! One IMMEDIATE transaction per batch: read each host's mark, keep the events above it, add
//! their rows and their rollups, move the mark. The batch is summed in memory first, so a
//! thousand bans of one day in one jail are one `daily` upsert, not a thousand.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::dim;
use crate::backend::Recorded;
use crate::model::{Day, EnrichedEvent};

/// The latest ban of a day for one target or network, and how many there were.
struct Latest {
    bans: i64,
    last_at: i64,
    country: String,
    asn: Option<u32>,
    jail: String,
}

impl Latest {
    fn add(&mut self, e: &EnrichedEvent) {
        self.bans += 1;
        if e.at >= self.last_at {
            self.last_at = e.at;
            self.country.clone_from(&e.country);
            self.asn = e.asn;
            self.jail.clone_from(&e.jail);
        }
    }

    fn of(e: &EnrichedEvent) -> Latest {
        Latest {
            bans: 1,
            last_at: e.at,
            country: e.country.clone(),
            asn: e.asn,
            jail: e.jail.clone(),
        }
    }
}

pub(super) fn mark(c: &mut Connection, host: &str) -> rusqlite::Result<i64> {
    Ok(
        c.query_row("SELECT last_id FROM marks WHERE host = ?1", [host], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0),
    )
}

pub(super) fn record(
    c: &mut Connection,
    mut events: Vec<EnrichedEvent>,
) -> rusqlite::Result<Recorded> {
    events.sort_by(|a, b| a.host.cmp(&b.host).then(a.id.cmp(&b.id)));
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Recorded::default();
    let mut daily: HashMap<(Day, i64, String), i64> = HashMap::new();
    let mut targets: HashMap<(Day, i64), Latest> = HashMap::new();
    let mut networks: HashMap<(Day, i64), Latest> = HashMap::new();
    let mut target_ids: HashMap<String, i64> = HashMap::new();
    let mut network_ids: HashMap<String, i64> = HashMap::new();
    let mut orgs: BTreeMap<u32, String> = BTreeMap::new();
    let mut marks: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (day, host, id, at, target, jail, country, asn, network)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for e in &events {
            let (mark, last_at) = match marks.get(&e.host) {
                Some(m) => *m,
                None => {
                    let m = tx
                        .query_row(
                            "SELECT last_id, last_at FROM marks WHERE host = ?1",
                            [&e.host],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?
                        .unwrap_or((0, 0));
                    marks.insert(e.host.clone(), m);
                    m
                }
            };
            if e.id <= mark {
                out.duplicates += 1;
                continue;
            }
            marks.insert(e.host.clone(), (e.id, last_at.max(e.at)));
            let target = intern(
                &tx,
                &mut target_ids,
                "targets",
                "target",
                &e.target.to_string(),
            )?;
            let network = intern(&tx, &mut network_ids, "networks", "network", &e.network)?;
            insert.execute(params![
                e.day.0, e.host, e.id, e.at, target, e.jail, e.country, e.asn, network
            ])?;
            out.applied += 1;
            let asn = e.asn_key();
            for (d, key) in [
                (dim::TOTAL, String::new()),
                (dim::COUNTRY, e.country.clone()),
                (dim::JAIL, e.jail.clone()),
                (dim::ASN, asn),
                (dim::HOST, e.host.clone()),
                (dim::HOST_JAIL, format!("{}\t{}", e.host, e.jail)),
            ] {
                *daily.entry((e.day, d, key)).or_default() += 1;
            }
            targets
                .entry((e.day, target))
                .and_modify(|l| l.add(e))
                .or_insert_with(|| Latest::of(e));
            networks
                .entry((e.day, network))
                .and_modify(|l| l.add(e))
                .or_insert_with(|| Latest::of(e));
            if let (Some(asn), Some(org)) = (e.asn, &e.org) {
                orgs.insert(asn, org.clone());
            }
        }
    }
    if out.applied > 0 {
        write_rollups(&tx, &daily, &targets, &networks, &orgs)?;
        let mut st = tx.prepare_cached(
            "INSERT INTO marks (host, last_id, last_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (host) DO UPDATE SET last_id = max(last_id, excluded.last_id),
                                              last_at = max(last_at, excluded.last_at)",
        )?;
        for (host, (id, at)) in &marks {
            st.execute(params![host, id, at])?;
        }
    }
    tx.commit()?;
    Ok(out)
}

fn write_rollups(
    tx: &rusqlite::Transaction<'_>,
    daily: &HashMap<(Day, i64, String), i64>,
    targets: &HashMap<(Day, i64), Latest>,
    networks: &HashMap<(Day, i64), Latest>,
    orgs: &BTreeMap<u32, String>,
) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO daily (day, dim, key, bans) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (day, dim, key) DO UPDATE SET bans = bans + excluded.bans",
    )?;
    for ((day, d, key), n) in daily {
        st.execute(params![day.0, d, key, n])?;
    }
    // In an upsert every expression reads the row as it was, so `last_at` below is the old one.
    let mut st = tx.prepare_cached(
        "INSERT INTO daily_targets (day, target, bans, last_at, country, asn, jail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (day, target) DO UPDATE SET
            bans = bans + excluded.bans,
            last_at = max(last_at, excluded.last_at),
            country = iif(excluded.last_at >= last_at, excluded.country, country),
            asn = iif(excluded.last_at >= last_at, excluded.asn, asn),
            jail = iif(excluded.last_at >= last_at, excluded.jail, jail)",
    )?;
    for ((day, target), l) in targets {
        st.execute(params![
            day.0, target, l.bans, l.last_at, l.country, l.asn, l.jail
        ])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO daily_networks (day, network, bans, last_at, country, asn)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (day, network) DO UPDATE SET
            bans = bans + excluded.bans,
            last_at = max(last_at, excluded.last_at),
            country = iif(excluded.last_at >= last_at, excluded.country, country),
            asn = iif(excluded.last_at >= last_at, excluded.asn, asn)",
    )?;
    for ((day, network), l) in networks {
        st.execute(params![day.0, network, l.bans, l.last_at, l.country, l.asn])?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO asn_names (asn, org) VALUES (?1, ?2)
         ON CONFLICT (asn) DO UPDATE SET org = excluded.org WHERE org <> excluded.org",
    )?;
    for (asn, org) in orgs {
        st.execute(params![asn, org])?;
    }
    Ok(())
}

/// The id of `value` in a dictionary table (`targets`, `networks`), added when new. `memo`
/// spares repeated lookups within a batch.
fn intern(
    tx: &rusqlite::Transaction<'_>,
    memo: &mut HashMap<String, i64>,
    table: &str,
    column: &str,
    value: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = memo.get(value) {
        return Ok(*id);
    }
    let found: Option<i64> = tx
        .prepare_cached(&format!("SELECT id FROM {table} WHERE {column} = ?1"))?
        .query_row([value], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => tx
            .prepare_cached(&format!(
                "INSERT INTO {table} ({column}) VALUES (?1) RETURNING id"
            ))?
            .query_row([value], |r| r.get(0))?,
    };
    memo.insert(value.to_string(), id);
    Ok(id)
}

/// Deletes every day before `keep_from`, from the raw events and every rollup, then the
/// dictionary entries no day uses any more.
pub(super) fn prune(c: &mut Connection, keep_from: Day) -> rusqlite::Result<u64> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut gone = 0u64;
    for table in ["events", "daily", "daily_targets", "daily_networks"] {
        let n = tx.execute(
            &format!("DELETE FROM {table} WHERE day < ?1"),
            [keep_from.0],
        )?;
        gone += n as u64;
    }
    if gone > 0 {
        tx.execute(
            "DELETE FROM targets WHERE id NOT IN (SELECT target FROM daily_targets)",
            [],
        )?;
        tx.execute(
            "DELETE FROM networks WHERE id NOT IN (SELECT network FROM daily_networks)",
            [],
        )?;
    }
    tx.commit()?;
    Ok(gone)
}
