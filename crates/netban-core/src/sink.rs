//! The Sink trait: what an enforcement point (ExaFS, a NETCONF device, a command) implements.
//!
//! A sink is small. It turns a batch of [`Change`]s into remote calls and reports one
//! [`Outcome`] per change, saying for failures whether trying again soon makes sense. The
//! reconcile engine owns everything else: computing the changes, batching, retry timing with
//! backoff and jitter, deadlines, and recording what the sink holds.

use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    /// Take `target` away. `lease` is what it was added with.
    Remove {
        target: Target,
        remote_id: Option<String>,
        lease: LeaseInfo,
    },
}

impl Change {
    pub fn target(&self) -> &Target {
        match self {
            Change::Add { target, .. } | Change::Remove { target, .. } => target,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The remote side's id for the entry (an ExaFS rule id), if it has one.
    pub remote_id: Option<String>,
    /// The expiry the remote side stored, if it has one.
    pub expires: Option<i64>,
    /// Set when the remote side accepted the entry but does not enforce it (an ExaFS rule in
    /// its whitelist, or withdrawn): the operator must hear about it.
    pub not_enforced: Option<String>,
}

/// How soon a failed change is worth trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retry {
    /// A transient failure (connection refused, timeout, 429, 5xx): back off from seconds.
    Soon,
    /// The remote side refused it (validation error, limit reached, permission): nothing is
    /// dropped, but it is retried slowly, from minutes, until the operator fixes the cause.
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
    /// True when the entry carries netban's mark (e.g. the ExaFS comment), so netban may
    /// remove it even without a sink record.
    pub marked: bool,
    /// Set when the entry exists but is not enforced (ExaFS `rstate` other than active).
    pub not_enforced: Option<String>,
}

/// An enforcement point.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The sink's name from the config.
    fn name(&self) -> &str;

    /// The most changes one [`Sink::apply`] call takes.
    fn max_batch(&self) -> usize {
        32
    }

    /// The remote expiry to ask for a target whose leases end at `until`, or `None` when the
    /// sink has no expiry of its own (the entry stays until removed).
    fn expiry_for(&self, _until: Until, _now: i64) -> Option<i64> {
        None
    }

    /// For permanent bans on a sink with expiry: renew the remote entry when less than this
    /// many seconds are left.
    fn renew_before(&self) -> i64 {
        0
    }

    /// Carries out `changes`, returning exactly one outcome per change, in order. It must stop
    /// by `deadline`; a change not attempted by then is reported as a `Retry::Soon` failure.
    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome>;

    /// What the remote side holds, for repair; `None` when the sink cannot list it.
    async fn held(&self, _deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        Ok(None)
    }

    /// Reaches the remote side the way normal operation does (`netban check`). Returns a
    /// one-line description of what was checked.
    async fn check(&self, deadline: Instant) -> Result<String, SinkError>;
}
