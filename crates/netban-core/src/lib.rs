//! netban core: everything that decides, and nothing that talks to the network.
//!
//! - [`target`]: canonical IP networks; every address is parsed here first.
//! - [`lease`]: one reason to ban a target, and when it ends.
//! - [`guard`]: the policy every lease passes (allowlists, never-ban ranges, widest prefix).
//! - [`config`]: the TOML configuration.
//! - [`store`]: the SQLite state (leases, sink records) shared by every netban process.
//! - [`sink`]: the trait an enforcement point implements; [`exec`] is the command sink.
//! - [`reconcile`]: the engine that makes every sink hold the desired set.

pub mod clock;
pub mod config;
pub mod exec;
pub mod guard;
pub mod lease;
pub mod lock;
pub mod plan;
pub mod reconcile;
pub mod sink;
pub mod store;
pub mod target;
pub mod template;

pub use lease::{Lease, Origin, Until};
pub use sink::{Applied, Change, HeldEntry, LeaseInfo, Outcome, Retry, Sink, SinkError};
pub use target::{Family, Target, TargetError};
