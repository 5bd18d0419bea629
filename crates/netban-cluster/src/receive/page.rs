//! A page of the stream (what one `XREAD` returned) or a set of snapshots, into the store
//! with the reader's cursor: the one place the receiver decides what commits together.
//!
//! - A page: every entry is checked first ([`super::check_all`], no lock held), then taken
//!   in stream order in ONE transaction that also saves the cursor after the page's last
//!   entry, the marks and the counts. A failure anywhere rolls back all of it; the memory is
//!   read back from the store ([`Admission::reload`]) and the page is read again from the old
//!   cursor, against the old marks: applied once, never twice, never half.
//! - Snapshots: the leases go in chunks ([`super::PER_TRANSACTION`]), then the cursor and
//!   marks in a transaction of their own: after the leases they cover, never before. A
//!   failure between leaves the cursor where it was, so the snapshots are loaded again.

use netban_core::guard::Guard;
use netban_core::store::{Batch, BusCursor, Store, StoreError};

use super::{Admission, check_all};

/// A stream reader's name and position, saved with what it covers.
pub type Cursor<'a> = (&'a str, &'a BusCursor);

impl Admission {
    /// Takes a page of stream entries' events (`None`: an entry without one) in one
    /// transaction with `cursor`; true when leases changed. On an error nothing of the page
    /// is kept, here or in the store.
    pub fn take_page(
        &mut self,
        store: &Store,
        guard: &Guard,
        wires: &[Option<&[u8]>],
        cursor: Cursor<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let checked = check_all(&self.me, &self.trust, wires);
        self.rate.settle();
        let r = store.batch(|b| {
            let mut changed = false;
            for c in checked {
                changed |= self.take(b, guard, c, now)?.changed;
            }
            self.save(b, cursor, now)?;
            Ok(changed)
        });
        self.undo_on_error(store, now, r)
    }

    /// Loads each `(peer, entries)` snapshot, then saves `cursor` and the marks; true when
    /// leases changed.
    pub fn load_snapshots(
        &mut self,
        store: &Store,
        guard: &Guard,
        loads: &[(String, Vec<Vec<u8>>)],
        cursor: Cursor<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut load = || {
            let mut changed = false;
            for (peer, entries) in loads {
                changed |= self
                    .load_snapshot(store, guard, peer, entries, now)?
                    .changed;
            }
            store.batch(|b| self.save(b, cursor, now))?;
            Ok(changed)
        };
        let r = load();
        self.undo_on_error(store, now, r)
    }

    fn save(&mut self, b: &mut Batch<'_>, cursor: Cursor<'_>, now: i64) -> Result<(), StoreError> {
        let progress = self.progress();
        b.save_cluster_progress(Some(cursor), &progress, now)
    }

    /// After a failed transaction the memory (marks, counts, caps, the minute windows of
    /// `bans_per_minute`) may be ahead of the store: read it back and give the rate back,
    /// so that what failed is taken again in full, and not refused as over the rate by its
    /// own first try.
    pub(crate) fn undo_on_error<T>(
        &mut self,
        store: &Store,
        now: i64,
        r: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if r.is_ok() {
            self.rate.settle();
            return r;
        }
        self.rate.give_back();
        if let Err(e) = self.reload(store, now) {
            tracing::debug!("cluster: cannot read the peers' state back: {e}");
        }
        r
    }
}
