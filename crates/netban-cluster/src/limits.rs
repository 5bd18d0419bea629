//! The caps on what one origin may do here, and the once-a-minute log of what they refused.
//!
//! - `bans_per_minute`: counted per minute *of the origin's clock* (the event's timestamp),
//!   so a host catching up on a day of a peer's bans takes them all, while a peer that bans
//!   faster than the cap now is refused beyond it. Events from the future are refused
//!   elsewhere (see [`crate::receive`]), so timestamps cannot be spread forward to dodge the
//!   cap; spreading them back is bounded by the retention and by `active_per_origin`.
//!   The bans taken by a transaction that then fails are given back
//!   ([`RateWindows::give_back`]): the page is taken again, and its bans must not be refused
//!   as over the rate by their own first try.
//! - `active_per_origin`: live leases an origin holds here. Counted in memory (a count query
//!   per event would scan every lease) and re-read from the store every minute, since peer
//!   leases also end by expiring.
//!
//! Nothing over a cap is queued: it is refused, counted and, at most once a minute per origin
//! and cause, logged with how many were refused meanwhile. All of it is bounded: one entry
//! per trusted origin (plus `fanout`), minutes kept no longer than the retention.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::counts::Verdict;

/// How often a refusal of one origin and cause is logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// New bans per origin per minute of its clock.
#[derive(Debug, Default)]
pub struct RateWindows {
    per_minute: u32,
    /// Minutes to keep.
    keep: i64,
    minutes: HashMap<String, BTreeMap<i64, u32>>,
    /// `(origin, minute)` of each ban taken since the last [`RateWindows::settle`]: the
    /// takes of a transaction that may still fail.
    pending: Vec<(String, i64)>,
}

impl RateWindows {
    pub fn new(per_minute: u32, retention_secs: i64) -> RateWindows {
        RateWindows {
            per_minute,
            keep: retention_secs / 60 + 2,
            minutes: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Takes one ban of `origin` at `at` (unix seconds); false when the minute is full.
    pub fn take(&mut self, origin: &str, at: i64) -> bool {
        let minute = at.div_euclid(60);
        let per = match self.minutes.get_mut(origin) {
            Some(m) => m,
            None => self.minutes.entry(origin.to_string()).or_default(),
        };
        let n = per.entry(minute).or_insert(0);
        if *n >= self.per_minute {
            return false;
        }
        *n += 1;
        self.pending.push((origin.to_string(), minute));
        // Keep the map bounded: drop minutes older than the retention.
        if per.len() as i64 > self.keep
            && let Some((&oldest, _)) = per.iter().next()
        {
            per.remove(&oldest);
        }
        true
    }

    /// The takes since the last call stand (their transaction committed).
    pub fn settle(&mut self) {
        self.pending.clear();
    }

    /// Gives back the takes since the last [`RateWindows::settle`]: their transaction
    /// failed, and the same events are taken again, so they must not count twice.
    pub fn give_back(&mut self) {
        for (origin, minute) in self.pending.drain(..) {
            if let Some(n) = self
                .minutes
                .get_mut(&origin)
                .and_then(|m| m.get_mut(&minute))
            {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// Live leases per origin, as far as this process knows.
#[derive(Debug, Default)]
pub struct ActiveCounts {
    cap: u32,
    counts: HashMap<String, i64>,
    refreshed: Option<Instant>,
}

impl ActiveCounts {
    pub fn new(cap: u32) -> ActiveCounts {
        ActiveCounts {
            cap,
            ..ActiveCounts::default()
        }
    }

    /// Replaces the counts with the store's (`(origin, live leases)`).
    pub fn reset(&mut self, by_origin: Vec<(String, i64)>) {
        self.counts = by_origin.into_iter().collect();
        self.refreshed = Some(Instant::now());
    }

    /// True when the counts are older than a minute (or were never read).
    pub fn stale(&self) -> bool {
        self.refreshed
            .is_none_or(|t| t.elapsed() > Duration::from_secs(60))
    }

    /// True when `origin` already holds as many live leases as allowed.
    pub fn full(&self, origin: &str) -> bool {
        self.counts.get(origin).copied().unwrap_or(0) >= i64::from(self.cap)
    }

    pub fn add(&mut self, origin: &str, n: i64) {
        if let Some(c) = self.counts.get_mut(origin) {
            *c = (*c + n).max(0);
        } else if n > 0 {
            self.counts.insert(origin.to_string(), n);
        }
    }
}

/// Logs a refusal at most once a minute per origin and cause, with the count meanwhile.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: HashMap<(String, Verdict), (Instant, u64)>,
}

impl RefusalLog {
    pub fn note(&mut self, origin: &str, v: Verdict, detail: &dyn Fn() -> String) {
        let key = (origin.to_string(), v);
        match self.last.get_mut(&key) {
            Some((at, quiet)) if at.elapsed() < LOG_EVERY => *quiet += 1,
            Some((at, quiet)) => {
                tracing::warn!(
                    "cluster: refused an event from {origin} ({}): {}; {} more refused for the same reason in the last minute",
                    v.as_str(),
                    detail(),
                    *quiet
                );
                *at = Instant::now();
                *quiet = 0;
            }
            None => {
                tracing::warn!(
                    "cluster: refused an event from {origin} ({}): {}; further refusals of this kind are logged once a minute",
                    v.as_str(),
                    detail()
                );
                // Bounded: one entry per origin (trusted peers, fanout, untrusted) and cause.
                self.last.insert(key, (Instant::now(), 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_per_minute_of_the_origin_clock() {
        let mut r = RateWindows::new(2, 3600);
        assert!(r.take("a", 120));
        assert!(r.take("a", 150));
        assert!(!r.take("a", 179), "third in the same minute");
        assert!(r.take("b", 179), "another origin has its own");
        assert!(r.take("a", 180), "the next minute");
        // Bounded by the retention.
        for m in 0..1000 {
            r.take("c", m * 60);
        }
        assert!(r.minutes["c"].len() <= 62);
    }

    #[test]
    fn takes_of_a_failed_transaction_are_given_back() {
        let mut r = RateWindows::new(2, 3600);
        r.settle();
        assert!(r.take("a", 120));
        r.settle();
        assert!(r.take("a", 130));
        assert!(!r.take("a", 140));
        r.give_back();
        assert!(r.take("a", 130), "the failed take does not count");
        assert!(!r.take("a", 140), "the committed one still does");
    }

    #[test]
    fn active_counts() {
        let mut a = ActiveCounts::new(2);
        assert!(a.stale());
        a.reset(vec![("p".into(), 1)]);
        assert!(!a.full("p"));
        a.add("p", 1);
        assert!(a.full("p"));
        a.add("p", -5);
        assert!(!a.full("p"));
        assert!(!a.full("q"));
    }
}
