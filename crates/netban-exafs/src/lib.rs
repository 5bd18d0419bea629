//! ExaFS RTBH sink: netban's bans as remote-triggered black-hole rules in
//! [ExaFS](https://github.com/CESNET/exafs), through its REST API v3.
//!
//! ```text
//! netban change --> ExafsSink::apply --> POST   /api/v3/rules/rtbh        (add, extend)
//!                                        DELETE /api/v3/rules/rtbh/<id>   (remove)
//!                   ExafsSink::held  --> GET    /api/v3/rules             (repair)
//!                   ExafsSink::check --> GET    /api/v3/auth + /rules     (netban check)
//! ```
//!
//! - [`config`]: the sink's keys (`type = "exafs"`).
//! - [`sink`]: the [`netban_core::Sink`] implementation; [`rules`]: the rule operations;
//!   [`expiry`]: expiry rounding.
//! - [`comment`]: the comment stored with a rule, and who made a rule, read from it.
//! - [`client`]: HTTP, the token (memory, cache file, `GET /auth`), deadlines and retries;
//!   `reply`: an answer, read with a size cap.
//! - [`token`]: the JWT's expiry and the per-sink token cache file.
//! - [`api`]: the JSON ExaFS sends and expects.
//! - [`error`]: typed errors and the operator-facing text for each ExaFS refusal.
//!
//! What ExaFS does and does not do (no 409, string matching of addresses, time zones) is
//! written down in `reference/exafs.md`; the driver's choices follow from it.

pub mod api;
pub mod client;
pub mod comment;
pub mod config;
pub mod error;
pub mod expiry;
pub mod listing_cache;
mod reply;
mod rules;
pub mod sink;
pub mod token;

pub use config::ExafsConfig;
pub use error::{ApiError, ExafsError};
pub use sink::ExafsSink;
