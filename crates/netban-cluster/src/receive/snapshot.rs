//! Loading a peer's snapshot: this host's leases from that peer become exactly the live,
//! correctly signed entries of its snapshot hash, each through the cap and the guard.
//!
//! The entries are decoded and verified first (no state needed, several threads), then the
//! changes are applied [`PER_TRANSACTION`] at a time: a snapshot of 100,000 leases never
//! holds the write lock for more than a chunk. A crash between chunks leaves some of the
//! snapshot applied and the stream cursor where it was, so the next start loads the whole
//! snapshot again; loading is idempotent (it makes the leases exactly the snapshot).

use std::collections::HashMap;

use netban_core::Lease;
use netban_core::Target;
use netban_core::guard::Guard;
use netban_core::leases;
use netban_core::store::{PeerState, Store, StoreError};

use super::{Admission, PER_TRANSACTION};
use crate::counts::Verdict;
use crate::event::{self, Kind, PeerEvent};
use crate::sign::Trust;

/// One change a snapshot makes here.
enum Step<'a> {
    /// A lease of the origin here that the snapshot no longer has.
    End(&'a Lease),
    /// A signed start event of the snapshot.
    Start(&'a PeerEvent),
}

impl Admission {
    /// Makes this host's leases from `origin` exactly the live ones of its snapshot (signed
    /// start events), each through the cap and the guard. The mark moves to the newest entry
    /// in memory; the caller saves it (with its cursor) once every chunk committed.
    pub fn load_snapshot(
        &mut self,
        store: &Store,
        guard: &Guard,
        origin: &str,
        entries: &[Vec<u8>],
        now: i64,
    ) -> Result<Resynced, StoreError> {
        let mut out = Resynced::default();
        let mut keep: HashMap<(Target, String), PeerEvent> = HashMap::new();
        for v in verify_all(&self.trust, origin, entries) {
            match v {
                Err(cause) => {
                    self.count(origin, cause);
                    out.refused += 1;
                }
                Ok(ev) if ev.until.is_live(now) => {
                    keep.insert((ev.target, ev.jail.clone()), ev);
                }
                Ok(_) => {}
            }
        }
        let held: Vec<Lease> = store
            .live_leases(now, None)?
            .into_iter()
            .filter(|l| {
                l.origin.as_str() == origin && !keep.contains_key(&(l.target, l.jail.clone()))
            })
            .collect();
        let mut events: Vec<PeerEvent> = keep.into_values().collect();
        events.sort_by_key(|e| e.mark);
        let newest = events.last().map(|e| e.mark);
        let steps: Vec<Step<'_>> = held
            .iter()
            .map(Step::End)
            .chain(events.iter().map(Step::Start))
            .collect();
        for chunk in steps.chunks(PER_TRANSACTION) {
            store.batch(|b| {
                for step in chunk {
                    match step {
                        Step::End(l) => {
                            let ended = leases::end_peer_in(b, &l.target, &l.jail, origin, now)?;
                            self.active.add(origin, -(ended.len() as i64));
                            out.ended += ended.len();
                            out.changed |= !ended.is_empty();
                        }
                        Step::Start(ev) => {
                            let t = self.start(b, guard, ev, now, false)?;
                            if t.verdict == Verdict::Accepted {
                                out.leases += 1;
                            } else {
                                out.refused += 1;
                            }
                            out.changed |= t.changed;
                        }
                    }
                }
                Ok(())
            })?;
        }
        let state = self
            .marks
            .entry(origin.to_string())
            .or_insert_with(|| PeerState {
                origin: origin.to_string(),
                ..PeerState::default()
            });
        if let Some(m) = newest
            && m > state.mark
        {
            state.mark = m;
        }
        state.resynced = Some(now);
        let s = state.clone();
        let p = self.progress_of(origin);
        p.state.mark = s.mark;
        p.state.resynced = Some(now);
        tracing::info!(
            "cluster: resynced from {origin}'s snapshot: {} leases held, {} ended, {} refused",
            out.leases,
            out.ended,
            out.refused
        );
        Ok(out)
    }
}

/// Decodes and verifies a snapshot's entries (a large one on several threads): each is a
/// start event of `origin` signed by its key, or the cause it is refused for.
fn verify_all(trust: &Trust, origin: &str, entries: &[Vec<u8>]) -> Vec<Result<PeerEvent, Verdict>> {
    let one = |wire: &Vec<u8>| match event::decode(wire) {
        Ok(d) if d.event.origin == origin && d.event.kind == Kind::Start => {
            match event::verify(&d, trust) {
                Ok(()) => Ok(d.event),
                Err(_) => Err(Verdict::BadSignature),
            }
        }
        _ => Err(Verdict::Malformed),
    };
    super::check::parallel(entries, one)
}

/// What a snapshot load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resynced {
    /// Leases of the origin held here now.
    pub leases: usize,
    /// Leases of the origin ended because the snapshot no longer has them.
    pub ended: usize,
    /// Entries refused (signature, cap, guard).
    pub refused: usize,
    pub changed: bool,
}
