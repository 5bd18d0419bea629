//! What became of each event received, counted per origin and cause.
//!
//! The counts live in the state database (`cluster_counts`, saved once per batch), so
//! `netban cluster status` shows them with or without a daemon, and `/metrics` exports them
//! as `netban_cluster_events_total{peer, result}`. An event whose origin is not a trusted peer
//! is counted under [`UNTRUSTED`], never under the name it claims: anybody who can write to
//! the bus could otherwise fill the table with made-up names.

use serde::{Deserialize, Serialize};

/// The origin under which events from untrusted or unreadable origins are counted.
pub const UNTRUSTED: &str = "(untrusted)";

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Taken: the lease changed as it says (or already was so).
    Accepted,
    /// Not signed, or not by the origin's trusted key (forged or tampered).
    BadSignature,
    /// Its origin is not a trusted peer.
    UnknownKey,
    /// At or below the origin's high-water mark: seen before.
    Replay,
    /// Older than the retention.
    TooOld,
    /// Over `bans_per_minute` for its origin.
    Rate,
    /// Over `active_per_origin` for its origin.
    Cap,
    /// The guard refused the target (allowlist, never-ban range, too wide).
    Guard,
    /// Not an event: bad syntax, bad value, too long, from the future.
    Malformed,
    /// A fleet-wide unban from a peer not in `revoke_from`.
    RevokeDenied,
    /// A fanout message the jail/action filters drop (not a refusal).
    Filtered,
    /// This host's own event coming back (not counted).
    Own,
}

impl Verdict {
    pub const COUNTED: [Verdict; 11] = [
        Verdict::Accepted,
        Verdict::BadSignature,
        Verdict::UnknownKey,
        Verdict::Replay,
        Verdict::TooOld,
        Verdict::Rate,
        Verdict::Cap,
        Verdict::Guard,
        Verdict::Malformed,
        Verdict::RevokeDenied,
        Verdict::Filtered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::BadSignature => "bad_signature",
            Verdict::UnknownKey => "unknown_key",
            Verdict::Replay => "replay",
            Verdict::TooOld => "too_old",
            Verdict::Rate => "rate",
            Verdict::Cap => "cap",
            Verdict::Guard => "guard",
            Verdict::Malformed => "malformed",
            Verdict::RevokeDenied => "revoke_denied",
            Verdict::Filtered => "filtered",
            Verdict::Own => "own",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::COUNTED.into_iter().find(|v| v.as_str() == s)
    }

    /// True for the causes that refuse an event (not accepted, filtered or own).
    pub fn is_refusal(self) -> bool {
        !matches!(self, Verdict::Accepted | Verdict::Filtered | Verdict::Own)
    }
}

/// Events of one origin, by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub accepted: u64,
    pub bad_signature: u64,
    pub unknown_key: u64,
    pub replay: u64,
    pub too_old: u64,
    pub rate: u64,
    pub cap: u64,
    pub guard: u64,
    pub malformed: u64,
    pub revoke_denied: u64,
    pub filtered: u64,
}

impl Counts {
    pub fn add(&mut self, v: Verdict, n: u64) {
        let slot = match v {
            Verdict::Accepted => &mut self.accepted,
            Verdict::BadSignature => &mut self.bad_signature,
            Verdict::UnknownKey => &mut self.unknown_key,
            Verdict::Replay => &mut self.replay,
            Verdict::TooOld => &mut self.too_old,
            Verdict::Rate => &mut self.rate,
            Verdict::Cap => &mut self.cap,
            Verdict::Guard => &mut self.guard,
            Verdict::Malformed => &mut self.malformed,
            Verdict::RevokeDenied => &mut self.revoke_denied,
            Verdict::Filtered => &mut self.filtered,
            Verdict::Own => return,
        };
        *slot += n;
    }

    pub fn get(&self, v: Verdict) -> u64 {
        match v {
            Verdict::Accepted => self.accepted,
            Verdict::BadSignature => self.bad_signature,
            Verdict::UnknownKey => self.unknown_key,
            Verdict::Replay => self.replay,
            Verdict::TooOld => self.too_old,
            Verdict::Rate => self.rate,
            Verdict::Cap => self.cap,
            Verdict::Guard => self.guard,
            Verdict::Malformed => self.malformed,
            Verdict::RevokeDenied => self.revoke_denied,
            Verdict::Filtered => self.filtered,
            Verdict::Own => 0,
        }
    }

    /// Every refused event.
    pub fn refused(&self) -> u64 {
        Verdict::COUNTED
            .into_iter()
            .filter(|v| v.is_refusal())
            .map(|v| self.get(v))
            .sum()
    }

    /// Refused by a cap (`bans_per_minute` or `active_per_origin`).
    pub fn caps_hit(&self) -> u64 {
        self.rate + self.cap
    }
}
