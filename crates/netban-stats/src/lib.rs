//! netban attack statistics: who bans come from, against which jails, over time.
//!
//! ```text
//! outbox events --Stats::ingest--> counting rule (model) --> enrichment (geo: mmdb files)
//!                                         |
//!                                         v
//!                      StatsBackend::record (exactly once per host and event id)
//!                        sqlite: stats.db, raw events + daily rollups (one host)
//!                        redis:  per-day hashes, zsets, HyperLogLogs (the fleet)
//!                                         |
//!       report / top_asns / top_networks / top_offenders / hosts / summary / prune
//!                                         v
//!                  `netban stats` (table::render_table, --json Report), web API
//! ```
//!
//! - [`config`]: the `[stats]` section.
//! - [`model`]: what counts, days in the configured zone, the enriched record.
//! - [`geo`]: country and AS from mmdb files, hot-reloaded, cached by network.
//! - [`backend`]: the trait; [`sqlite`] and [`redis`] implement it.
//! - [`report`]: the JSON types (`netban stats --json`, `/api/v1/...`).
//! - [`stats`]: [`Stats`], what the daemon and the CLI hold.
//! - [`table`]: the human-readable `netban stats`.

pub mod backend;
pub mod config;
pub mod error;
pub mod geo;
pub mod model;
pub mod redis;
pub mod report;
pub mod sqlite;
pub mod stats;
pub mod table;

pub use backend::{Recorded, StatsBackend};
pub use config::{BackendKind, StatsConfig, StatsConfigError};
pub use error::StatsError;
pub use geo::{Geo, GeoInfo, GeoOptions};
pub use model::{Cause, Day, EnrichedEvent, EventKind, SourceEvent};
pub use report::{
    AsnCount, Counts, DayReport, Details, HostCount, NetworkCount, Offender, Report, Summary,
    Window,
};
pub use stats::{Ingested, OpenEnv, Stats};
pub use table::render_table;
