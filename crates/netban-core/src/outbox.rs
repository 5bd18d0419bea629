//! The event outbox: every lease change, in order, for whoever needs to know.
//!
//! Each change to a lease appends one [`Event`] to the `events` table in the same SQLite
//! transaction as the change itself ([`crate::store`]), so an event exists exactly when its
//! change does: a crash loses neither, a restored ban that changes nothing appends nothing.
//! Consumers (the cluster publisher, the stats ingester) read events after their own cursor,
//! kept in the state database, and commit the cursor once they have handled a batch: they
//! see every event at least once, in order, whenever they run, and never slow a ban.

use std::fmt;

use serde::Serialize;

use crate::store::{Store, StoreError};
use crate::target::Target;

/// What happened to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A lease that did not exist.
    Start,
    /// An existing lease got another end.
    Extend,
    /// The lease ended.
    End,
}

/// Why it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// fail2ban (or an operator) banned the target.
    Ban,
    /// fail2ban restored the ban at its start.
    Restore,
    /// fail2ban or an operator unbanned it.
    Unban,
    /// The lease's time ran out.
    Expired,
    /// A fleet-wide unban (`netban unban --everywhere`).
    Revoke,
    /// A peer's event.
    Peer,
    /// netban adopted an entry it found on a sink (a migration, a lost state).
    Adopt,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Extend => "extend",
            EventKind::End => "end",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "start" => EventKind::Start,
            "extend" => EventKind::Extend,
            "end" => EventKind::End,
            _ => return None,
        })
    }
}

impl Cause {
    pub const ALL: [Cause; 7] = [
        Cause::Ban,
        Cause::Restore,
        Cause::Unban,
        Cause::Expired,
        Cause::Revoke,
        Cause::Peer,
        Cause::Adopt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Ban => "ban",
            Cause::Restore => "restore",
            Cause::Unban => "unban",
            Cause::Expired => "expired",
            Cause::Revoke => "revoke",
            Cause::Peer => "peer",
            Cause::Adopt => "adopt",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lease change, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Monotonic; consumers' cursors point at it.
    pub id: i64,
    /// Unix seconds of the change.
    pub at: i64,
    pub kind: EventKind,
    pub target: Target,
    pub jail: String,
    /// `local` or the peer's host id.
    pub origin: String,
    /// Unix seconds; `None`: permanent.
    pub until: Option<i64>,
    /// Seconds, -1 permanent.
    pub bantime: i64,
    pub cause: Cause,
    /// fail2ban's `<failures>`, when known.
    pub failures: Option<i64>,
    /// fail2ban's jail `port` setting, when known.
    pub port: Option<String>,
}

impl Event {
    /// True when the event counts as a new ban in the statistics: a lease started by this
    /// host's fail2ban (not a restore, not an adoption, not a peer's: peers count their own).
    pub fn counts_as_ban(&self) -> bool {
        self.kind == EventKind::Start && self.cause == Cause::Ban && self.origin == "local"
    }
}

/// A named reader of the outbox with a cursor persisted in the state database.
#[derive(Debug, Clone)]
pub struct Consumer {
    name: String,
}

impl Consumer {
    /// `name` identifies the cursor (`cluster`, `stats`); keep it stable.
    pub fn new(name: &str) -> Consumer {
        Consumer {
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `limit` events after the cursor, oldest first.
    pub fn next(&self, store: &Store, limit: usize) -> Result<Vec<Event>, StoreError> {
        let after = store.cursor(&self.name)?;
        store.events_after(after, limit)
    }

    /// Moves the cursor to `id` (the last event handled). Never moves it back.
    pub fn commit(&self, store: &Store, id: i64) -> Result<(), StoreError> {
        store.set_cursor(&self.name, id)
    }

    /// How many events wait for this consumer.
    pub fn lag(&self, store: &Store) -> Result<i64, StoreError> {
        let after = store.cursor(&self.name)?;
        store.events_count_after(after)
    }
}
