//! nftables sink: netban's bans as elements of kernel sets, with per-element timeouts, so the
//! kernel lifts each ban at its end even when netban is not running.
//!
//! ```text
//! netban changes --> NftSink::apply --> nft -j -f -   one transaction per batch (add, extend, remove)
//!                    NftSink::held  --> nft -j list table|set         (repair)
//!                    NftSink::check --> nft -j -t list + nft -c -j -f - (netban check)
//! ```
//!
//! - [`config`]: the driver's keys (`table`, set names, `hooks`, `priority`, `create`, `nft`).
//! - [`layout`]: which set a target goes to (hosts apart, one set per prefix length).
//! - [`batch`]: a batch of changes as element commands (`add; delete; add`, no race with
//!   the kernel's expiry).
//! - [`ensure`]: the table, sets, chains and drop rules, made without doubling rules.
//! - [`json`]: the JSON `nft -j` reads, as serde types (never nft syntax).
//! - [`listing`]: reading `nft -j list` back.
//! - [`run`]: running `nft` (argv, stdin, bounded output, timeout).
//! - [`mark`]: element comments (ownership mark, expiry).
//! - [`operator`]: `create = false`, meeting the elements of an operator's set.
//! - [`sink`], `held`, `read`: [`NftSink`], its listings, and the `Sink` impl.
//!
//! The kernel facts the design rests on are in `reference/nftables.md` and
//! `docs/nftables.md`.

pub mod batch;
pub mod config;
pub mod ensure;
mod held;
pub mod json;
pub mod layout;
pub mod listing;
pub mod mark;
pub mod operator;
mod read;
pub mod run;
pub mod sink;

pub use config::{Hook, NftConfig};
pub use sink::NftSink;
