//! Small tables beside the leases: `meta` (counters, the instance id), `kept` (entries netban
//! leaves on a sink on purpose) and `refusals` (what the guard refused, bounded).

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::target::Target;

/// The most refusals kept; the oldest are pruned.
const MAX_REFUSALS: i64 = 10_000;

/// An entry netban leaves on a sink on purpose: it is not netban's to remove (an operator's
/// rule, the old script's, one a lost state made), so it stays until it expires or somebody
/// removes it. Shown loudly until it is gone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub sink: String,
    pub target: Target,
    pub remote_id: Option<String>,
    /// Who made it, in words.
    pub owner: String,
    /// Why netban leaves it.
    pub reason: String,
    pub expires: Option<i64>,
    pub noticed: i64,
}

/// A target the guard refused, with the last reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub target: Target,
    pub jail: String,
    pub origin: String,
    pub reason: String,
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

impl Store {
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Adds one to the counter `key` and returns the new value.
    pub fn bump_counter(&self, key: &str) -> Result<i64, StoreError> {
        self.write(|tx| {
            tx.query_row(
                "INSERT INTO meta (key, value) VALUES (?1, '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
                 RETURNING CAST(value AS INTEGER)",
                params![key],
                |r| r.get(0),
            )
        })
    }

    /// The counter `key` (0 when never bumped).
    pub fn counter(&self, key: &str) -> Result<i64, StoreError> {
        Ok(self
            .get_meta(key)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// This database's instance id, created with it. A database copied to another machine
    /// (its `/etc/machine-id` differs) gets a new one, and what it recorded becomes adopted:
    /// the copy removes what it knows, and never takes the original's entries for its own.
    pub(super) fn load_instance(&self) -> rusqlite::Result<String> {
        let machine = std::fs::read_to_string("/etc/machine-id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let conn = self.conn();
        let get = |key: &str| -> rusqlite::Result<Option<String>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
        };
        let instance = get("instance")?;
        let stored_machine = get("machine_id")?;
        let moved = matches!((&stored_machine, &machine), (Some(a), Some(b)) if a != b);
        if let Some(i) = instance.as_ref().filter(|_| !moved) {
            if stored_machine.is_none()
                && let Some(m) = &machine
            {
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('machine_id', ?1)",
                    params![m],
                )?;
            }
            return Ok(i.clone());
        }
        let new = format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            // Another process may have created it meanwhile.
            if let Some(i) = get("instance")?
                && !moved
            {
                return Ok(i);
            }
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('instance', ?1)",
                params![new],
            )?;
            if let Some(m) = &machine {
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('machine_id', ?1)",
                    params![m],
                )?;
            }
            if moved {
                conn.execute("UPDATE sink_records SET adopted = 1", [])?;
                tracing::warn!(
                    "state {}: this database was made on another machine (/etc/machine-id differs); it now has its own identity, and the entries it recorded are treated as adopted",
                    self.path.display()
                );
            }
            Ok(new.clone())
        })();
        match result {
            Ok(i) => {
                conn.execute_batch("COMMIT")?;
                Ok(i)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Notes an entry netban leaves on a sink on purpose; true when it is new (say so loudly
    /// once, then keep showing it in status).
    pub fn note_kept(&self, k: &Kept) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO kept (sink, target, remote_id, owner, reason, expires, noticed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (sink, target, remote_id) DO UPDATE SET
                   owner = excluded.owner, reason = excluded.reason, expires = excluded.expires
                 WHERE kept.reason != excluded.reason OR kept.expires IS NOT excluded.expires",
                params![
                    k.sink,
                    k.target.to_string(),
                    k.remote_id.clone().unwrap_or_default(),
                    k.owner,
                    k.reason,
                    k.expires,
                    k.noticed
                ],
            )?;
            Ok(n > 0)
        })
    }

    /// Forgets kept entries of `sink` that are no longer there (`still` lists what is), or
    /// that expired by `now`.
    pub fn prune_kept(
        &self,
        sink: &str,
        still: &[(Target, Option<String>)],
        now: i64,
    ) -> Result<usize, StoreError> {
        let kept = self.kept(Some(sink))?;
        self.write(|tx| {
            let mut n = 0;
            for k in &kept {
                let present = still
                    .iter()
                    .any(|(t, id)| *t == k.target && *id == k.remote_id);
                if !present || k.expires.is_some_and(|e| e <= now) {
                    n += tx.execute(
                        "DELETE FROM kept WHERE sink = ?1 AND target = ?2 AND remote_id = ?3",
                        params![
                            k.sink,
                            k.target.to_string(),
                            k.remote_id.clone().unwrap_or_default()
                        ],
                    )?;
                }
            }
            Ok(n)
        })
    }

    /// Forgets the kept entry of a target on a sink (netban took it over or removed it).
    pub fn forget_kept(&self, sink: &str, target: &Target) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM kept WHERE sink = ?1 AND target = ?2",
                params![sink, target.to_string()],
            )?;
            Ok(())
        })
    }

    /// Kept entries, of one sink or all.
    pub fn kept(&self, sink: Option<&str>) -> Result<Vec<Kept>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT sink, target, remote_id, owner, reason, expires, noticed FROM kept
                 WHERE ?1 IS NULL OR sink = ?1 ORDER BY sink, target",
            )?;
            let rows = st.query_map(params![sink], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (sink, target, remote_id, owner, reason, expires, noticed) = row?;
                let Ok(target) = Target::parse(&target) else {
                    continue;
                };
                out.push(Kept {
                    sink,
                    target,
                    remote_id: (!remote_id.is_empty()).then_some(remote_id),
                    owner,
                    reason,
                    expires,
                    noticed,
                });
            }
            Ok(out)
        })
    }

    /// Records a guard refusal (bounded: the oldest beyond 10,000 are pruned).
    pub fn record_refusal(
        &self,
        target: &Target,
        jail: &str,
        origin: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            refusal(tx, target, jail, origin, reason, now)?;
            prune_refusals(tx)
        })
    }

    /// Refusals, newest first, optionally of one target.
    pub fn refusals(
        &self,
        target: Option<&Target>,
        limit: usize,
    ) -> Result<Vec<Refused>, StoreError> {
        let t = target.map(|t| t.to_string());
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT target, jail, origin, reason, first, last, count FROM refusals
                 WHERE ?1 IS NULL OR target = ?1 ORDER BY last DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![t, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (target, jail, origin, reason, first, last, count) = row?;
                let Ok(target) = Target::parse(&target) else {
                    continue;
                };
                out.push(Refused {
                    target,
                    jail,
                    origin,
                    reason,
                    first,
                    last,
                    count,
                });
            }
            Ok(out)
        })
    }
}

/// Records a guard refusal in `tx` (without pruning: see [`prune_refusals`]).
pub(super) fn refusal(
    tx: &Transaction<'_>,
    target: &Target,
    jail: &str,
    origin: &str,
    reason: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO refusals (target, jail, origin, reason, first, last, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
         ON CONFLICT (target, jail, origin) DO UPDATE SET
           reason = excluded.reason, last = excluded.last, count = count + 1",
    )?
    .execute(params![target.to_string(), jail, origin, reason, now])?;
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('guard_refusals', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    )?
    .execute([])?;
    Ok(())
}

/// Keeps the newest [`MAX_REFUSALS`] refusals (once per transaction that recorded some).
pub(super) fn prune_refusals(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let n: i64 = tx.query_row("SELECT count(*) FROM refusals", [], |r| r.get(0))?;
    if n > MAX_REFUSALS {
        tx.execute(
            "DELETE FROM refusals WHERE (target, jail, origin) IN
               (SELECT target, jail, origin FROM refusals ORDER BY last LIMIT ?1)",
            params![n - MAX_REFUSALS],
        )?;
    }
    Ok(())
}
