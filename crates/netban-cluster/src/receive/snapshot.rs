//! Loading a peer's snapshot: this host's leases from that peer become exactly the live,
//! correctly signed entries of its snapshot hash, each through the cap and the guard.

use std::collections::HashMap;

use netban_core::Lease;
use netban_core::Target;
use netban_core::guard::Guard;
use netban_core::leases;
use netban_core::store::{PeerState, Store, StoreError};

use super::Admission;
use crate::counts::Verdict;
use crate::event::{self, Kind, PeerEvent};

impl Admission {
    /// Makes this host's leases from `origin` exactly the live ones of its snapshot (signed
    /// start events), each through the cap and the guard. The mark moves to the newest entry.
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
        for wire in entries {
            let d = match event::decode(wire) {
                Ok(d) if d.event.origin == origin && d.event.kind == Kind::Start => d,
                _ => {
                    self.count(origin, Verdict::Malformed);
                    out.refused += 1;
                    continue;
                }
            };
            if event::verify(&d, &self.trust).is_err() {
                self.count(origin, Verdict::BadSignature);
                out.refused += 1;
                continue;
            }
            if d.event.until.is_live(now) {
                keep.insert((d.event.target, d.event.jail.clone()), d.event);
            }
        }
        let held: Vec<Lease> = store
            .live_leases(now, None)?
            .into_iter()
            .filter(|l| l.origin.as_str() == origin)
            .collect();
        for l in &held {
            if !keep.contains_key(&(l.target, l.jail.clone())) {
                let ended = leases::end_peer(store, &l.target, &l.jail, origin, now)?;
                self.active.add(origin, -(ended.len() as i64));
                out.ended += ended.len();
                out.changed |= !ended.is_empty();
            }
        }
        let mut newest = None;
        let mut events: Vec<PeerEvent> = keep.into_values().collect();
        events.sort_by_key(|e| e.mark);
        for ev in &events {
            newest = newest.max(Some(ev.mark));
            let t = self.start(store, guard, ev, now, false)?;
            if t.verdict == Verdict::Accepted {
                out.leases += 1;
            } else {
                out.refused += 1;
            }
            out.changed |= t.changed;
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
