//! netban core: everything that decides, and nothing that talks to the network.
//!
//! - [`target`]: canonical IP networks; every address is parsed here first.
//! - [`lease`]: one reason to ban a target, and when it ends; [`leases`]: the operations on
//!   them (ban, unban, flush, expire, admit a peer's), shared by every caller.
//! - [`guard`]: the policy every lease passes (allowlists, never-ban ranges, widest prefix).
//! - [`config`]: the TOML configuration, and the seam driver crates plug their keys into.
//! - [`store`]: the SQLite state (leases, sink records, the event outbox) shared by every
//!   netban process; [`outbox`]: the events and their consumers.
//! - [`sink`]: the trait an enforcement point implements; [`owner`]: whose entries are whose;
//!   [`exec`] is the command sink.
//! - [`reconcile`]: the engine that makes every sink hold the desired set; [`lock`]: one
//!   delivering process per sink; [`retry`]: backoff shared with the drivers;
//!   [`private_file`]: the small state files besides the database.

pub mod clock;
pub mod config;
#[cfg(feature = "contract")]
pub mod contract;
pub mod exec;
pub mod guard;
pub mod lease;
pub mod leases;
pub mod lock;
pub mod outbox;
pub mod owner;
pub mod private_file;
pub mod reconcile;
pub mod retry;
pub mod sink;
pub mod store;
pub mod target;
pub mod template;
pub mod view;

pub use lease::{Lease, Origin, Until};
pub use sink::{Applied, Change, HeldEntry, LeaseInfo, Outcome, Owner, Retry, Sink, SinkError};
pub use target::{Family, Target, TargetError};
