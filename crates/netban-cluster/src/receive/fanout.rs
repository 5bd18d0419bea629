//! Bans and unbans from the fanout bridge (fail2ban-clusterd's unsigned messages): no
//! signature or replay check applies, only the `fanout` origin's caps and the guard.

use netban_core::Until;
use netban_core::guard::Guard;
use netban_core::leases;
use netban_core::store::{Batch, StoreError};

use super::{Admission, Taken};
use crate::counts::Verdict;
use crate::event::{Kind, PeerEvent};
use crate::fanout::message::{Action, Message};

impl Admission {
    /// A ban or unban from the fanout bridge (unsigned: only caps and the guard apply), in
    /// the caller's transaction.
    pub fn take_fanout(
        &mut self,
        b: &mut Batch<'_>,
        guard: &Guard,
        m: &Message,
        bantime: i64,
        now: i64,
    ) -> Result<Taken, StoreError> {
        let (target, jail) = (m.target, m.jail.as_str());
        if self.active.stale() {
            self.active.reset(b.live_leases_by_origin(now)?);
        }
        self.rate.settle();
        let taken = if m.action == Action::Ban {
            let until = if bantime < 0 {
                Until::Never
            } else {
                Until::At(now + bantime)
            };
            let ev = PeerEvent {
                origin: crate::fanout::ORIGIN.to_string(),
                mark: Default::default(),
                at: now,
                kind: Kind::Start,
                target,
                jail: jail.to_string(),
                until,
                bantime,
            };
            self.start(b, guard, &ev, now, true)?
        } else {
            let ended = leases::end_peer_in(b, &target, jail, crate::fanout::ORIGIN, now)?;
            self.active
                .add(crate::fanout::ORIGIN, -(ended.len() as i64));
            Taken {
                verdict: Verdict::Accepted,
                changed: !ended.is_empty(),
            }
        };
        if taken.verdict == Verdict::Accepted {
            self.count(crate::fanout::ORIGIN, Verdict::Accepted);
            let p = self.progress_of(crate::fanout::ORIGIN);
            p.state.last_at = Some(now);
            p.state.last_seen = Some(now);
        }
        Ok(taken)
    }

    /// Counts a fanout message refused before it reached the caps (malformed, filtered).
    pub fn refuse_fanout(&mut self, v: Verdict, detail: &dyn Fn() -> String) {
        if v == Verdict::Filtered {
            self.count(crate::fanout::ORIGIN, v);
        } else {
            self.refuse(crate::fanout::ORIGIN, v, detail);
        }
    }
}
