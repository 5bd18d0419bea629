//! NETCONF sink: netban's bans as entries of a blocklist on routers (a YANG list, a 128T/SSR
//! tenant, a Junos prefix-list), over NETCONF (RFC 6241) over SSH (RFC 6242), one
//! `<edit-config>` and one `<commit/>` per batch.
//!
//! ```text
//! engine batch --> NetconfSink::apply_batch --> [lock] edit-config (every add and remove)
//!                                               commit [discard-changes on failure] [unlock]
//!                  NetconfSink::list        --> get-config running, subtree filter (repair)
//!                  NetconfSink::check       --> new session, host key, get-config (netban check)
//! ```
//!
//! - [`config`]: the sink's keys, `devices = [...]` expansion, validation; [`layout`]: the
//!   payload templates; [`presets`]: the shipped layouts.
//! - [`sink`]: [`NetconfSink`]; [`edit`]: the NETCONF operations of a batch and a listing;
//!   [`listing`]: owners of listed entries, entries netban leaves alone.
//! - [`device`]: the session kept per device, reconnect with backoff.
//! - [`session`]: hello, framing, message ids, timeouts; [`framing`]: RFC 6242 framing.
//! - [`transport`]: SSH with russh; [`hostkey`]: pinned fingerprints and `known_hosts`.
//! - [`template`], [`xml`], [`reply`]: escaped payloads, parsed replies and `rpc-error`s.
//! - [`error`]: typed errors and their retry class; [`build`]: secrets and options;
//!   [`check`]: `netban check`.
//!
//! How netconfd (the test server) behaves is written down in `reference/netconf.md` and in
//! `crates/netban-testsupport/src/netconfd.rs`; the driver's choices follow from it.

pub mod build;
pub mod check;
pub mod config;
pub mod device;
pub mod edit;
pub mod error;
pub mod framing;
pub mod hostkey;
pub mod layout;
pub mod listing;
pub mod presets;
pub mod reply;
pub mod session;
pub mod sink;
pub mod template;
pub mod transport;
pub mod xml;

pub use config::{Datastore, DeviceConfig, NetconfConfig};
pub use error::NetconfError;
pub use sink::NetconfSink;
