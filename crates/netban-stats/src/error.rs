//! The errors of the statistics engine, written for the operator: what failed, on what, and
//! what to do next. Statistics never block a ban: the caller logs these and tries again later
//! (the outbox keeps the events until they are recorded).

use std::path::PathBuf;

use crate::config::StatsConfigError;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(
        "stats: cannot open {path}: {source}; check that the state directory exists and is writable by netban"
    )]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stats: SQLite {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "stats: {path} has schema version {found}, newer than this netban knows ({known}); upgrade netban or move the file away"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("stats: Redis {what} failed: {source}; {}", next_step(.source))]
    Redis {
        what: &'static str,
        source: redis::RedisError,
    },
    #[error("stats: the Redis URL is not valid ({detail}); fix [stats] redis or redis_file")]
    RedisUrl { detail: String },
    #[error(
        "stats: host id {host:?} cannot be used as a statistics key; set host_id to letters, digits, '-', '_', '.'"
    )]
    Host { host: String },
    #[error(transparent)]
    Config(#[from] StatsConfigError),
    #[error("stats: the database task stopped ({0}); this is a bug, please report it")]
    Task(String),
}

/// What to do after a Redis error: the TLS fix when it is one, else where to look.
fn next_step(e: &redis::RedisError) -> &'static str {
    netban_core::config::redis_tls_hint(&e.to_string())
        .unwrap_or("check [stats] redis (or [cluster] redis) and that the server answers")
}

impl StatsError {
    pub(crate) fn redis(what: &'static str) -> impl FnOnce(redis::RedisError) -> StatsError {
        move |source| StatsError::Redis { what, source }
    }
}
