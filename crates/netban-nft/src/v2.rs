//! TEMPORARY: the sink-v2 types `netban_core::sink` is about to get (notes/sink-v2.md).
//!
//! The lead is landing the new Sink trait in core (`Owner`, `HeldEntry::owner`, `Batching`,
//! `Commit`, `self_expiring`, `SinkEnv`); until it reaches this branch these stand-ins let the
//! driver say what it will say through that trait. `NftSink`'s inherent methods use them, and
//! the impl of today's `netban_core::Sink` maps them onto the old types. When core has them:
//! delete this file, `use netban_core::sink::{...}` instead, and turn the inherent methods
//! into the trait impl (see the note at the end of `sink.rs`).

use std::path::PathBuf;
use std::time::Duration;

use netban_core::Target;

/// Who made an entry the sink lists. The driver reports; the engine decides by policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    This,
    Host(String),
    Foreign,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    pub target: Target,
    pub remote_id: Option<String>,
    pub expires: Option<i64>,
    pub owner: Owner,
    pub not_enforced: Option<String>,
}

/// Engine-owned timing: the engine collects changes for `window` after the first one, then
/// calls `apply` with at most `max` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub max: usize,
    pub window: Duration,
}

/// Atomic: a batch is all-or-nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    PerChange,
    Atomic,
}

/// What every driver constructor gets from core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkEnv {
    pub state_dir: PathBuf,
    pub host_id: String,
    /// This netban instance's ownership mark, e.g. `netban:web-01:3f9a2c1d7e4b`.
    pub mark: String,
}
