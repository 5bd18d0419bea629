//! The Sink trait: what an enforcement point (ExaFS, a NETCONF device, nftables, a command)
//! implements.
//!
//! A sink is small. It turns a batch of [`Change`]s into remote calls and reports one
//! [`Outcome`] per change, saying for failures whether trying again soon makes sense. The
//! reconcile engine owns everything else: computing the changes, batch timing ([`Batching`]),
//! splitting a rejected all-or-nothing batch ([`Commit::Atomic`]), retry timing, deadlines,
//! deciding what to do with entries it finds ([`Owner`]), and recording what the sink holds.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::owner::Owner;

use crate::lease::Until;
use crate::target::Target;

/// What a sink is told about the lease behind a change; templates and comments use it.
///
/// For a target with several leases it describes the one that ends last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub jail: String,
    pub origin: String,
    /// Seconds, -1 for permanent.
    pub bantime: i64,
    /// Unix seconds; `None` for permanent.
    pub until: Option<i64>,
}

impl LeaseInfo {
    /// The lease shown for an entry netban finds on a sink without knowing why it is there.
    pub fn unknown() -> LeaseInfo {
        LeaseInfo {
            jail: "unknown".into(),
            origin: "local".into(),
            bantime: 0,
            until: None,
        }
    }
}

/// One thing to do on a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Put `target` in place, or extend it when `remote_id` says it is already there.
    /// `expires` is the remote expiry the sink asked for through [`Sink::expiry_for`].
    Add {
        target: Target,
        expires: Option<i64>,
        lease: LeaseInfo,
        remote_id: Option<String>,
    },
    /// Take `target` away. `lease` is what it was added with. `adopted`: netban took this
    /// entry over from another state (it does not carry this instance's mark) and may remove
    /// it all the same.
    Remove {
        target: Target,
        remote_id: Option<String>,
        lease: LeaseInfo,
        adopted: bool,
    },
}

impl Change {
    pub fn target(&self) -> &Target {
        match self {
            Change::Add { target, .. } | Change::Remove { target, .. } => target,
        }
    }

    pub fn lease(&self) -> &LeaseInfo {
        match self {
            Change::Add { lease, .. } | Change::Remove { lease, .. } => lease,
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Change::Add {
                remote_id: None, ..
            } => "add",
            Change::Add { .. } => "extend",
            Change::Remove { .. } => "remove",
        }
    }
}

/// A change the sink carried out, as the remote side confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The remote side's id for the entry (an ExaFS rule id), if it has one.
    pub remote_id: Option<String>,
    /// The expiry the remote side stored, if it has one.
    pub expires: Option<i64>,
    /// Set when the remote side accepted the entry but does not enforce it (an ExaFS rule in
    /// its whitelist, or withdrawn): the operator must hear about it.
    pub not_enforced: Option<String>,
    /// Who made the entry the change landed on. Usually this netban; ExaFS answers a POST
    /// with an existing rule whoever made it, and netban must never remove an operator's
    /// rule (another state of this host's is adopted instead).
    pub owner: Owner,
    /// A removal found nothing to remove (the entry was not there).
    pub absent: bool,
}

impl Default for Applied {
    fn default() -> Self {
        Applied {
            remote_id: None,
            expires: None,
            not_enforced: None,
            owner: Owner::This,
            absent: false,
        }
    }
}

/// How soon a failed change is worth trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retry {
    /// A transient failure (connection refused, timeout, 429, 5xx): back off from seconds.
    Soon,
    /// The remote side refused it (validation error, limit reached, permission): nothing is
    /// dropped, but it is retried slowly, from minutes, until the operator fixes the cause.
    /// For an atomic sink, a whole batch refused this way is split to find the culprit.
    Later,
}

/// A failed change or call, with a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub retry: Retry,
    pub message: String,
}

impl SinkError {
    pub fn soon(message: impl Into<String>) -> SinkError {
        SinkError {
            retry: Retry::Soon,
            message: message.into(),
        }
    }
    pub fn later(message: impl Into<String>) -> SinkError {
        SinkError {
            retry: Retry::Later,
            message: message.into(),
        }
    }
}

pub type Outcome = Result<Applied, SinkError>;

/// An entry the remote side holds, as listed by [`Sink::held`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    pub target: Target,
    pub remote_id: Option<String>,
    pub expires: Option<i64>,
    /// Who made it, as the entry's mark says ([`crate::owner::Mark::owner`]).
    pub owner: Owner,
    /// Set when the entry exists but is not enforced (ExaFS `rstate` other than active).
    pub not_enforced: Option<String>,
}

/// Batch timing, owned by the engine: after the first change arrives it waits `window` for
/// more, then hands the sink at most `max` changes per [`Sink::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub max: usize,
    pub window: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max: 32,
            window: Duration::ZERO,
        }
    }
}

/// How a sink commits a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Commit {
    /// Each change succeeds or fails on its own.
    #[default]
    PerChange,
    /// The batch is all or nothing (an nft transaction, a NETCONF commit, one command for
    /// every target). When the remote side rejects it, the sink reports
    /// `Err(SinkError::later(..))` for every change, and the engine splits the batch in
    /// halves until the rejected changes stand alone, committing the rest.
    Atomic,
}

/// An enforcement point.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The sink's name from the config.
    fn name(&self) -> &str;

    /// Batch size and window; the engine owns the timing.
    fn batching(&self) -> Batching {
        Batching::default()
    }

    /// Whether a batch is all or nothing.
    fn commit(&self) -> Commit {
        Commit::PerChange
    }

    /// The remote expiry to ask for a target whose leases end at `until`, or `None` when the
    /// sink has no expiry of its own (the entry stays until removed).
    fn expiry_for(&self, _until: Until, _now: i64) -> Option<i64> {
        None
    }

    /// True when entries vanish by themselves at their expiry (nft timeouts, ExaFS expiry):
    /// the engine sends no removal for a record whose expiry has passed, and repair does not
    /// call such a vanished entry drift.
    fn self_expiring(&self) -> bool {
        false
    }

    /// What carrying out `change` would send, for `--dry-run` (secrets left out): the
    /// request, the command line, the transaction.
    fn describe(&self, change: &Change) -> String {
        format!("{} {}", change.verb(), change.target())
    }

    /// Carries out `changes`, returning exactly one outcome per change, in order. It must stop
    /// by `deadline`; a change not attempted by then is reported as a `Retry::Soon` failure.
    /// It must be safe to drop mid-way (the engine cuts off a call that overruns).
    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome>;

    /// What the remote side holds, for repair; `None` when the sink cannot list it.
    async fn held(&self, _deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        Ok(None)
    }

    /// Reaches the remote side the way normal operation does (`netban check`). Returns a
    /// one-line description of what was checked.
    async fn check(&self, deadline: Instant) -> Result<String, SinkError>;
}
