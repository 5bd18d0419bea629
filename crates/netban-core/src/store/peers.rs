//! The cluster's small tables (migration 0003): what each peer sent last (the replay
//! high-water mark), how many of its events were taken or refused and why, where this host's
//! readers of the Redis stream are, and the fleet-wide unbans waiting to be published.
//!
//! The cluster receiver keeps these in memory while it runs and saves them once per batch of
//! stream entries, in one transaction with its stream cursor ([`Store::save_cluster_progress`]):
//! a crash replays at most one batch, which is harmless because applying a peer's event twice
//! changes nothing the second time.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::target::Target;

/// The position of an event in its origin's history: `(epoch, seq, sub)`, compared in that
/// order. `epoch` changes when the origin's state database is new, `seq` is the origin's
/// outbox event id, `sub` orders a fleet-wide unban among the events (0 for an event).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct PeerMark {
    pub epoch: i64,
    pub seq: i64,
    pub sub: i64,
}

/// What is known of one origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerState {
    pub origin: String,
    /// The newest event taken from it.
    pub mark: PeerMark,
    /// The origin's timestamp of that event.
    pub last_at: Option<i64>,
    /// When it arrived here.
    pub last_seen: Option<i64>,
    /// When its snapshot was last loaded.
    pub resynced: Option<i64>,
}

/// Where a reader of the Redis stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusCursor {
    /// The last stream entry id handled (`0-0`: none).
    pub stream_id: String,
    /// The stream epoch that id belongs to.
    pub epoch: String,
}

/// A fleet-wide unban to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeRequest {
    pub id: i64,
    pub at: i64,
    /// The newest outbox event id when it was asked.
    pub after_event: i64,
    pub target: Target,
}

/// What a batch changed about one origin: its new state and counts to add.
#[derive(Debug, Clone, Default)]
pub struct PeerProgress {
    pub state: PeerState,
    /// `(cause, how many more)`.
    pub counts: Vec<(String, i64)>,
}

/// The cursor name of the publisher's revokes.
const REVOKES_CURSOR: &str = "cluster_revokes";

impl Store {
    /// Every origin the cluster has heard from.
    pub fn peer_states(&self) -> Result<Vec<PeerState>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT origin, epoch, seq, sub, last_at, last_seen, resynced FROM cluster_peers
                 ORDER BY origin",
            )?;
            let rows = st.query_map([], |r| {
                Ok(PeerState {
                    origin: r.get(0)?,
                    mark: PeerMark {
                        epoch: r.get(1)?,
                        seq: r.get(2)?,
                        sub: r.get(3)?,
                    },
                    last_at: r.get(4)?,
                    last_seen: r.get(5)?,
                    resynced: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Counts of events taken or refused: `(origin, cause, n)`.
    pub fn peer_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT origin, cause, n FROM cluster_counts ORDER BY 1, 2")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// Where the stream reader `name` is, if it ever read.
    pub fn bus_cursor(&self, name: &str) -> Result<Option<BusCursor>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT stream_id, epoch FROM cluster_bus WHERE name = ?1",
                params![name],
                |r| {
                    Ok(BusCursor {
                        stream_id: r.get(0)?,
                        epoch: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Saves, in one transaction, a stream reader's cursor and what a batch changed about its
    /// origins. Marks only grow; counts add up.
    pub fn save_cluster_progress(
        &self,
        cursor: Option<(&str, &BusCursor)>,
        peers: &[PeerProgress],
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx| save_progress(tx, cursor, peers, now))
    }

    /// Forgets what is known of `origin` (its high-water mark and counts): for a peer whose
    /// state database was replaced while its clock was wrong, so that its new events looked
    /// like replays.
    pub fn forget_peer(&self, origin: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM cluster_peers WHERE origin = ?1",
                params![origin],
            )?;
            tx.execute(
                "DELETE FROM cluster_counts WHERE origin = ?1",
                params![origin],
            )?;
            Ok(())
        })
    }

    /// This state database's cluster epoch (milliseconds when it first published), created
    /// from `now_ms` the first time.
    pub fn cluster_epoch(&self, now_ms: i64) -> Result<i64, StoreError> {
        if let Some(v) = self.get_meta("cluster_epoch")?.and_then(|v| v.parse().ok()) {
            return Ok(v);
        }
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('cluster_epoch', ?1)",
                params![now_ms.to_string()],
            )?;
            let v: String = tx.query_row(
                "SELECT value FROM meta WHERE key = 'cluster_epoch'",
                [],
                |r| r.get(0),
            )?;
            Ok(v.parse().unwrap_or(now_ms))
        })
    }

    /// Records a fleet-wide unban of `target` to publish, ordered after the newest outbox
    /// event. Returns its id.
    pub fn request_revoke(&self, target: &Target, now: i64) -> Result<i64, StoreError> {
        self.write(|tx| {
            let after: i64 = tx
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            tx.execute(
                "INSERT INTO cluster_revokes (at, after_event, target) VALUES (?1, ?2, ?3)",
                params![now, after, target.to_string()],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Up to `limit` revokes not yet published, oldest first.
    pub fn pending_revokes(&self, limit: usize) -> Result<Vec<RevokeRequest>, StoreError> {
        let after = self.cursor(REVOKES_CURSOR)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, at, after_event, target FROM cluster_revokes WHERE id > ?1
                 ORDER BY id LIMIT ?2",
            )?;
            let rows = st.query_map(params![after, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, at, after_event, target) = row?;
                // Written only from parsed targets; skip a row edited by hand.
                if let Ok(target) = Target::parse(&target) {
                    out.push(RevokeRequest {
                        id,
                        at,
                        after_event,
                        target,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Marks revokes up to `id` published and deletes published ones older than `keep_since`.
    pub fn revokes_published(&self, id: i64, keep_since: i64) -> Result<(), StoreError> {
        self.set_cursor(REVOKES_CURSOR, id)?;
        let done = self.cursor(REVOKES_CURSOR)?;
        self.write(|tx| {
            tx.execute(
                "DELETE FROM cluster_revokes WHERE id <= ?1 AND at < ?2",
                params![done, keep_since],
            )?;
            Ok(())
        })
    }

    /// The cursor of the outbox consumer `name` (the last event id it handled; 0 when none).
    pub fn outbox_cursor(&self, name: &str) -> Result<i64, StoreError> {
        self.cursor(name)
    }

    /// The newest outbox event id ever appended, even when pruned since (0 when none).
    pub fn last_event_seq(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
        })
    }
}

/// Saves a stream reader's cursor and what a batch changed about its origins, in `tx` (the
/// transaction of the leases they cover). Marks only grow; counts add up.
pub(super) fn save_progress(
    tx: &Transaction<'_>,
    cursor: Option<(&str, &BusCursor)>,
    peers: &[PeerProgress],
    now: i64,
) -> rusqlite::Result<()> {
    if let Some((name, cur)) = cursor {
        tx.execute(
            "INSERT INTO cluster_bus (name, stream_id, epoch, updated) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET stream_id = excluded.stream_id,
               epoch = excluded.epoch, updated = excluded.updated",
            params![name, cur.stream_id, cur.epoch, now],
        )?;
    }
    for p in peers {
        let s = &p.state;
        tx.execute(
            "INSERT INTO cluster_peers (origin, epoch, seq, sub, last_at, last_seen, resynced)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (origin) DO UPDATE SET
               epoch = CASE WHEN (excluded.epoch, excluded.seq, excluded.sub) > (epoch, seq, sub)
                            THEN excluded.epoch ELSE epoch END,
               seq = CASE WHEN (excluded.epoch, excluded.seq, excluded.sub) > (epoch, seq, sub)
                          THEN excluded.seq ELSE seq END,
               sub = CASE WHEN (excluded.epoch, excluded.seq, excluded.sub) > (epoch, seq, sub)
                          THEN excluded.sub ELSE sub END,
               last_at = coalesce(excluded.last_at, last_at),
               last_seen = coalesce(excluded.last_seen, last_seen),
               resynced = coalesce(excluded.resynced, resynced)",
            params![
                s.origin,
                s.mark.epoch,
                s.mark.seq,
                s.mark.sub,
                s.last_at,
                s.last_seen,
                s.resynced
            ],
        )?;
        for (cause, n) in &p.counts {
            tx.execute(
                "INSERT INTO cluster_counts (origin, cause, n) VALUES (?1, ?2, ?3)
                 ON CONFLICT (origin, cause) DO UPDATE SET n = n + excluded.n",
                params![s.origin, cause, n],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn marks_only_grow_and_counts_add_up() {
        let (_d, s) = store();
        let p = |seq, n| PeerProgress {
            state: PeerState {
                origin: "web-02".into(),
                mark: PeerMark {
                    epoch: 5,
                    seq,
                    sub: 0,
                },
                last_at: Some(100 + seq),
                last_seen: Some(200),
                resynced: None,
            },
            counts: vec![("accepted".into(), n)],
        };
        let cur = BusCursor {
            stream_id: "5-1".into(),
            epoch: "e1".into(),
        };
        s.save_cluster_progress(Some(("receiver", &cur)), &[p(7, 2)], 1)
            .unwrap();
        s.save_cluster_progress(None, &[p(3, 1)], 2).unwrap();
        let st = &s.peer_states().unwrap()[0];
        assert_eq!(st.mark.seq, 7, "an older mark never moves it back");
        assert_eq!(st.last_at, Some(103));
        assert_eq!(
            s.peer_counts().unwrap(),
            vec![("web-02".into(), "accepted".into(), 3)]
        );
        assert_eq!(s.bus_cursor("receiver").unwrap(), Some(cur));
        assert_eq!(s.bus_cursor("other").unwrap(), None);
        s.forget_peer("web-02").unwrap();
        assert!(s.peer_states().unwrap().is_empty());
    }

    #[test]
    fn revokes_are_ordered_after_the_newest_event_and_pruned_once_published() {
        let (_d, s) = store();
        assert_eq!(s.last_event_seq().unwrap(), 0);
        let t = Target::parse("192.0.2.1").unwrap();
        let id = s.request_revoke(&t, 10).unwrap();
        let pending = s.pending_revokes(10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].id, pending[0].after_event), (id, 0));
        s.revokes_published(id, 5).unwrap();
        assert!(s.pending_revokes(10).unwrap().is_empty());
        assert_eq!(s.cluster_epoch(42).unwrap(), 42);
        assert_eq!(s.cluster_epoch(99).unwrap(), 42, "created once");
    }
}
