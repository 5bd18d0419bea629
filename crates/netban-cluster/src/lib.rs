//! netban cluster: one fleet, one picture. A ban on one host becomes a lease on every other
//! host within milliseconds, including hosts that were down at the time, and nothing a peer
//! sends is trusted beyond its signature, its caps and the guard.
//!
//! - [`config`]: `[cluster]` (the Redis bus, keys, peers, limits, fanout);
//! - [`event`] and [`sign`]: the signed event, its canonical wire form, Ed25519 keys;
//! - [`receive`], [`limits`], [`counts`]: what an event must pass before it changes a lease,
//!   and the counts by cause;
//! - [`redis`]: the Redis Streams bus (publisher, receiver, snapshots, epochs);
//! - [`lock`]: the hub lock for `exclusive` sinks;
//! - [`fanout`]: fail2ban-clusterd compatibility over the fanout line protocol;
//! - [`node`]: the [`Cluster`] the daemon builds and runs; [`status`]: what it reports.
//!
//! See docs/cluster.md for topologies, trust and sizing.

pub mod config;
pub mod counts;
pub mod event;
pub mod fanout;
pub mod limits;
pub mod lock;
pub mod node;
pub mod receive;
mod reconnect;
pub mod redis;
pub mod sign;
pub mod status;

pub use config::{ClusterConfig, FanoutConfig, Limits};
pub use counts::{Counts, Verdict};
pub use lock::{HubLock, LockGate};
pub use node::{Cluster, ClusterError, GuardFn, OnChange, Setup};
pub use sign::{HostKey, PublicKey, keygen};
pub use status::{ClusterStatus, PeerStatus, from_store};

use netban_core::Target;
use netban_core::store::{Store, StoreError};

/// `netban unban --everywhere IP`: ends every lease of `target` here and records a signed
/// fleet-wide unban for the publisher (sent in order with this host's other events; while
/// Redis is away it waits like every event). Returns the leases ended here.
pub fn revoke_everywhere(
    store: &Store,
    target: &Target,
    host: &str,
    now: i64,
) -> Result<Vec<netban_core::Lease>, StoreError> {
    let ended = netban_core::leases::revoke(store, target, host, now)?;
    store.request_revoke(target, now)?;
    Ok(ended)
}
