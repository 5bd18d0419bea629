//! Many lease changes in one write transaction: how the cluster receiver applies a page of
//! stream entries or a chunk of a peer's snapshot.
//!
//! One transaction per change costs ~200–500 µs (taking and releasing the write lock, the
//! WAL commit); inside one transaction a change costs tens of µs. [`Store::batch`] opens the
//! transaction, hands the caller a [`Batch`] to change leases through (each change appends
//! its outbox event in the same transaction, exactly as a single call does), and commits.
//! Whatever the caller saves alongside (the stream cursor, the peers' marks) commits with the
//! leases it covers, or not at all.
//!
//! Log lines about the changes are queued with [`Batch::after_commit`] and written only once
//! the transaction committed: a batch that fails logs nothing it did not do. Keep batches
//! small (a thousand changes take tens of milliseconds): every other netban process, `netban
//! ban` from fail2ban included, waits for the write lock meanwhile.

use std::time::{Duration, Instant};

use rusqlite::{Transaction, TransactionBehavior};

use super::peers::{BusCursor, PeerProgress};
use super::{
    BUSY_TIMEOUT, LeaseChange, LeaseFacts, Store, StoreError, classify, is_busy, lease_tx, leases,
    meta, peers,
};
use crate::lease::{Lease, Origin};
use crate::target::Target;

/// The changes of one transaction (see [`Store::batch`]).
pub struct Batch<'a> {
    tx: &'a Transaction<'a>,
    store: &'a Store,
    after: Vec<Box<dyn FnOnce() + Send>>,
    refusals: bool,
}

impl Store {
    /// Runs `f` in one immediate write transaction and commits when `f` returns `Ok`; rolls
    /// everything back when it returns an error. Waits (up to the busy timeout) for another
    /// process's write lock before starting; `f` itself runs once.
    pub fn batch<T>(
        &self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let give_up = Instant::now() + BUSY_TIMEOUT;
        let tx = loop {
            match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                Ok(tx) => break tx,
                // As in `write`: SQLite answers busy at once in a few WAL corner cases.
                Err(e) if is_busy(&e) && Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(5 + fastrand::u64(..20)));
                }
                Err(e) => return Err(classify(&self.path, e)),
            }
        };
        let mut b = Batch {
            tx: &tx,
            store: self,
            after: Vec::new(),
            refusals: false,
        };
        let out = f(&mut b)?;
        let (after, refusals) = (std::mem::take(&mut b.after), b.refusals);
        drop(b);
        if refusals {
            meta::prune_refusals(&tx).map_err(|e| classify(&self.path, e))?;
        }
        tx.commit().map_err(|e| classify(&self.path, e))?;
        drop(conn);
        for note in after {
            note();
        }
        Ok(out)
    }
}

impl Batch<'_> {
    fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T, StoreError> {
        r.map_err(|e| classify(&self.store.path, e))
    }

    /// Runs `note` (a log line about this batch) once the transaction committed.
    pub fn after_commit(&mut self, note: impl FnOnce() + Send + 'static) {
        self.after.push(Box::new(note));
    }

    /// As [`Store::upsert_lease`], in this transaction.
    pub fn upsert_lease(
        &mut self,
        lease: &Lease,
        facts: &LeaseFacts,
        now: i64,
    ) -> Result<LeaseChange, StoreError> {
        self.db(lease_tx::upsert(self.tx, lease, facts, now))
    }

    /// As [`Store::end_leases`], in this transaction.
    pub fn end_leases(
        &mut self,
        target: &Target,
        jail: Option<&str>,
        origin: Option<&Origin>,
        facts: &LeaseFacts,
        now: i64,
    ) -> Result<Vec<Lease>, StoreError> {
        self.db(lease_tx::end(self.tx, target, jail, origin, facts, now))
    }

    /// As [`Store::record_refusal`], in this transaction (pruned once, at commit).
    pub fn record_refusal(
        &mut self,
        target: &Target,
        jail: &str,
        origin: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.refusals = true;
        self.db(meta::refusal(self.tx, target, jail, origin, reason, now))
    }

    /// Every lease of a target, as this transaction sees it.
    pub fn leases_of(&self, target: &Target) -> Result<Vec<Lease>, StoreError> {
        self.db(leases::query_leases(
            self.tx,
            "WHERE target = ?1",
            rusqlite::params![target.to_string()],
        ))
    }

    /// Live leases of the given targets, as this transaction sees them.
    pub fn live_leases_of(&self, now: i64, targets: &[Target]) -> Result<Vec<Lease>, StoreError> {
        self.db(leases::live_of(self.tx, now, targets))
    }

    /// Live leases per origin, as this transaction sees them.
    pub fn live_leases_by_origin(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.db(leases::by_origin(self.tx, now))
    }

    /// As [`Store::save_cluster_progress`], in this transaction: the cursor and marks commit
    /// with the leases they cover.
    pub fn save_cluster_progress(
        &mut self,
        cursor: Option<(&str, &BusCursor)>,
        peers: &[PeerProgress],
        now: i64,
    ) -> Result<(), StoreError> {
        self.db(peers::save_progress(self.tx, cursor, peers, now))
    }
}
