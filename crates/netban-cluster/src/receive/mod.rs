//! Receiving: what an event from the bus must pass before it changes a lease here.
//!
//! In order, each step refusing with its own cause ([`Verdict`]):
//! 1. it decodes, canonically ([`crate::event::decode`]) — else `malformed`;
//! 2. its origin is a trusted peer — else `unknown_key` (this host's own events are skipped);
//! 3. the signature is the origin's — else `bad_signature` (unsigned, tampered, wrong key);
//! 4. it is newer than the origin's high-water mark — else `replay`;
//! 5. it is not older than the retention — else `too_old` — nor from the future — `malformed`;
//! 6. a start passes `bans_per_minute` (`rate`) and `active_per_origin` (`cap`, unless the
//!    lease exists already), then the guard through `leases::admit_peer_in` (`guard`),
//!    exactly as `leases::admit_peer`; an end goes to `leases::end_peer_in`; a revoke to
//!    `leases::revoke_in` if its origin may revoke (`revoke_from`), else `revoke_denied`.
//!
//! The high-water mark moves once an event is authentic and fresh (step 5), whatever the caps
//! say after: a refused event is consumed, never queued. The leases land with
//! `origin = <peer host id>` and cause `peer`; the publisher never republishes them.
//!
//! Steps 1–3 need no state ([`check`]): a page of stream entries is checked first, on
//! several threads. Steps 4–6 run in stream order inside one write transaction
//! ([`netban_core::store::Batch`]) per page: the marks advance in memory event by event, so
//! two events of one origin in a page are each checked against the state the one before
//! left, and every lease change of the page commits together with the stream cursor and the
//! marks that cover it ([`Admission::progress`], saved in the same transaction), or not at
//! all.
//!
//! [`Admission`] keeps the marks, caps and counts in memory; when a page's transaction fails
//! it [`Admission::reload`]s them from the store, and the page is read again ([`page`]).

use std::collections::HashMap;

use netban_core::guard::Guard;
use netban_core::lease::Origin;
use netban_core::leases::{self, BanOutcome, BanRequest};
use netban_core::outbox::Cause;
use netban_core::store::{
    Batch, LeaseChange, LeaseFacts, PeerProgress, PeerState, Store, StoreError,
};
use netban_core::{Lease, Target};

use crate::config::ClusterConfig;
use crate::counts::Verdict;
use crate::event::{Kind, PeerEvent};
use crate::limits::{ActiveCounts, RateWindows, RefusalLog};
use crate::sign::Trust;

/// How far in the future an event's timestamp may be (clock skew between hosts).
pub const MAX_SKEW: i64 = 300;

/// The most lease changes applied in one transaction: a page of stream entries (`XREAD
/// COUNT`), a chunk of a snapshot. Tens of milliseconds of the write lock.
pub const PER_TRANSACTION: usize = 1000;

pub mod check;
mod fanout;
mod page;
mod snapshot;

pub use check::{Checked, check_all};
pub use snapshot::Resynced;

/// What one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub verdict: Verdict,
    /// True when a lease changed (the sinks have work).
    pub changed: bool,
}

impl Taken {
    fn refused(verdict: Verdict) -> Taken {
        Taken {
            verdict,
            changed: false,
        }
    }
}

/// The receiving state of one host: trusted keys, marks, caps, counts not yet saved.
#[derive(Debug)]
pub struct Admission {
    me: String,
    trust: Trust,
    retention: i64,
    /// `revoke_from`; `None`: every trusted peer.
    revoke_from: Option<Vec<String>>,
    marks: HashMap<String, PeerState>,
    dirty: HashMap<String, PeerProgress>,
    rate: RateWindows,
    active: ActiveCounts,
    log: RefusalLog,
}

impl Admission {
    /// Loads the marks and live lease counts from the store.
    pub fn new(
        cfg: &ClusterConfig,
        me: &str,
        trust: Trust,
        store: &Store,
        now: i64,
    ) -> Result<Admission, StoreError> {
        let mut a = Admission {
            me: me.to_string(),
            trust,
            retention: cfg.retention as i64,
            revoke_from: cfg.revoke_from.clone(),
            marks: HashMap::new(),
            dirty: HashMap::new(),
            rate: RateWindows::new(cfg.limits.bans_per_minute, cfg.retention as i64),
            active: ActiveCounts::new(cfg.limits.active_per_origin),
            log: RefusalLog::default(),
        };
        a.reload(store, now)?;
        Ok(a)
    }

    /// Re-reads the marks and counts (after a failed save, the memory may be ahead).
    pub fn reload(&mut self, store: &Store, now: i64) -> Result<(), StoreError> {
        self.marks = store
            .peer_states()?
            .into_iter()
            .map(|s| (s.origin.clone(), s))
            .collect();
        self.dirty.clear();
        self.active.reset(store.live_leases_by_origin(now)?);
        Ok(())
    }

    /// The trusted peers.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Takes the changes since the last call, for [`Store::save_cluster_progress`].
    pub fn progress(&mut self) -> Vec<PeerProgress> {
        self.dirty.drain().map(|(_, p)| p).collect()
    }

    fn count(&mut self, origin: &str, v: Verdict) {
        if v == Verdict::Own {
            return;
        }
        let p = self.progress_of(origin);
        match p.counts.iter_mut().find(|(c, _)| c == v.as_str()) {
            Some((_, n)) => *n += 1,
            None => p.counts.push((v.as_str().to_string(), 1)),
        }
    }

    fn progress_of(&mut self, origin: &str) -> &mut PeerProgress {
        self.dirty
            .entry(origin.to_string())
            .or_insert_with(|| PeerProgress {
                state: PeerState {
                    origin: origin.to_string(),
                    ..PeerState::default()
                },
                counts: Vec::new(),
            })
    }

    fn refuse(&mut self, origin: &str, v: Verdict, detail: &dyn Fn() -> String) -> Taken {
        self.count(origin, v);
        self.log.note(origin, v, detail);
        Taken::refused(v)
    }

    /// Checks and applies one event from the bus, after [`check`] (steps 4–6), in the
    /// caller's transaction. Events must come in stream order.
    pub fn take(
        &mut self,
        b: &mut Batch<'_>,
        guard: &Guard,
        checked: Checked,
        now: i64,
    ) -> Result<Taken, StoreError> {
        if self.active.stale() {
            self.active.reset(b.live_leases_by_origin(now)?);
        }
        let ev = match checked {
            Checked::Event(ev) => ev,
            Checked::Own => return Ok(Taken::refused(Verdict::Own)),
            Checked::Refused {
                origin,
                verdict,
                detail,
            } => return Ok(self.refuse(&origin, verdict, &|| detail.clone())),
        };
        let origin = ev.origin.clone();
        let mark = self.marks.get(&origin).map(|s| s.mark).unwrap_or_default();
        if ev.mark <= mark {
            let (got, had) = (ev.mark, mark);
            return Ok(self.refuse(&origin, Verdict::Replay, &|| {
                format!(
                    "event {}/{}/{} is not newer than {}/{}/{}",
                    got.epoch, got.seq, got.sub, had.epoch, had.seq, had.sub
                )
            }));
        }
        if ev.at > now + MAX_SKEW {
            let at = ev.at;
            return Ok(self.refuse(&origin, Verdict::Malformed, &|| {
                format!(
                    "its time is {}s ahead of this host's clock; check NTP on both",
                    at - now
                )
            }));
        }
        // Authentic and not seen before: consumed, whatever follows.
        self.advance(&origin, &ev, now);
        if ev.at < now - self.retention {
            let age = now - ev.at;
            let keep = self.retention;
            return Ok(self.refuse(&origin, Verdict::TooOld, &|| {
                format!("it is {age}s old, older than the retention ({keep}s)")
            }));
        }
        let taken = match ev.kind {
            Kind::Start => self.start(b, guard, &ev, now, true)?,
            Kind::End => {
                let ended = leases::end_peer_in(b, &ev.target, &ev.jail, &origin, now)?;
                self.active.add(&origin, -(ended.len() as i64));
                Taken {
                    verdict: Verdict::Accepted,
                    changed: !ended.is_empty(),
                }
            }
            Kind::Revoke => {
                let may = match &self.revoke_from {
                    Some(list) => list.contains(&origin),
                    None => self.trust.contains(&origin),
                };
                if !may {
                    let t = ev.target;
                    return Ok(self.refuse(&origin, Verdict::RevokeDenied, &|| {
                        format!("fleet-wide unban of {t}: {origin} is not in [cluster] revoke_from")
                    }));
                }
                let ended = leases::revoke_in(b, &ev.target, &origin, now)?;
                self.ended(&ended);
                Taken {
                    verdict: Verdict::Accepted,
                    changed: !ended.is_empty(),
                }
            }
        };
        if taken.verdict == Verdict::Accepted {
            self.count(&origin, Verdict::Accepted);
        }
        Ok(taken)
    }

    fn advance(&mut self, origin: &str, ev: &PeerEvent, now: i64) {
        let state = self
            .marks
            .entry(origin.to_string())
            .or_insert_with(|| PeerState {
                origin: origin.to_string(),
                ..PeerState::default()
            });
        state.mark = ev.mark;
        state.last_at = Some(ev.at);
        state.last_seen = Some(now);
        let s = state.clone();
        let p = self.progress_of(origin);
        p.state.mark = s.mark;
        p.state.last_at = s.last_at;
        p.state.last_seen = s.last_seen;
    }

    fn ended(&mut self, ended: &[Lease]) {
        for l in ended {
            if let Origin::Peer(p) = &l.origin {
                self.active.add(p, -1);
            }
        }
    }

    /// A start: rate (when `rated`), cap, guard, then the lease.
    fn start(
        &mut self,
        b: &mut Batch<'_>,
        guard: &Guard,
        ev: &PeerEvent,
        now: i64,
        rated: bool,
    ) -> Result<Taken, StoreError> {
        let origin = ev.origin.as_str();
        let (t, j) = (ev.target, ev.jail.clone());
        if rated && !self.rate.take(origin, ev.at) {
            return Ok(self.refuse(origin, Verdict::Rate, &|| {
                format!("ban of {t} (jail {j}): more than [cluster.limits] bans_per_minute")
            }));
        }
        if self.active.full(origin) && !has_lease(b, &ev.target, &ev.jail, origin)? {
            return Ok(self.refuse(origin, Verdict::Cap, &|| {
                format!("ban of {t} (jail {j}): {origin} holds [cluster.limits] active_per_origin leases here already")
            }));
        }
        let req = BanRequest {
            target: ev.target,
            jail: ev.jail.clone(),
            origin: Origin::Peer(origin.to_string()),
            until: ev.until,
            bantime: ev.bantime,
            since: ev.at,
            facts: LeaseFacts::cause(Cause::Peer),
        };
        Ok(match leases::admit_peer_in(b, guard, &req, now)? {
            // admit_peer_in logs the reason; count it here.
            BanOutcome::Refused(_) => {
                self.count(origin, Verdict::Guard);
                Taken::refused(Verdict::Guard)
            }
            BanOutcome::Ended => Taken {
                verdict: Verdict::Accepted,
                changed: false,
            },
            BanOutcome::Recorded(change) => {
                if change == LeaseChange::New {
                    self.active.add(origin, 1);
                }
                Taken {
                    verdict: Verdict::Accepted,
                    changed: change != LeaseChange::Same,
                }
            }
        })
    }
}

fn has_lease(b: &Batch<'_>, target: &Target, jail: &str, origin: &str) -> Result<bool, StoreError> {
    Ok(b.leases_of(target)?
        .iter()
        .any(|l| l.jail == jail && l.origin.as_str() == origin))
}

#[cfg(test)]
mod tests;
