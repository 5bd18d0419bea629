//! The Redis bus: one stream of signed events for the fleet, a snapshot of each host's active
//! leases, and an epoch that says whether Redis still holds what it held.
//!
//! Keys (`P` is the prefix, default `netban`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:bus:stream` | stream | every host's events, field `e` = the signed wire form; trimmed by `MINID ~` after the retention |
//! | `P:bus:snap:HOST` | hash | `TARGET JAIL` -> the signed start event of each live lease of HOST, kept in step with its events |
//! | `P:bus:mark` | hash | HOST -> `EPOCH SEQ SUB` of the newest event it published: its snapshot is current up to there |
//! | `P:bus:epoch` | string | a random id made when the stream is made: a Redis that lost its data gets a new one |
//! | `P:lock:SINK` | string | the hub lock of an `exclusive` sink (see [`crate::lock`]) |
//!
//! - [`publish`]: local outbox events to the stream and the snapshot, one `MULTI` per batch;
//! - [`receive`]: `XREAD BLOCK` from the cursor kept in the state database, gap and epoch
//!   checks, snapshot reloads;
//! - [`reply`]: reading Redis replies without trusting their shape.
//!
//! Facts this relies on (checked against redis-server 7.0 here):
//! - a blocking `XREAD` needs its own connection with the response timeout off (redis-rs
//!   times a reply out after 500 ms by default); other commands are bounded by
//!   [`COMMAND_TIMEOUT`] around each call;
//! - a restarted Redis without persistence comes back empty, with a *new* stream whose ids
//!   are above every old cursor and whose `max-deleted-entry-id` is `0-0`: nothing in the
//!   stream says entries were lost. The epoch key does: a reader whose cursor belongs to
//!   another epoch reloads the snapshots, and a publisher that finds a new epoch rebuilds its
//!   own snapshot from its live leases.

pub mod publish;
pub mod receive;
pub mod reply;

use std::time::Duration;

use netban_core::config::{Secret, redact_userinfo};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};

/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for any reply except a blocking read.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis problem, for the log and `netban cluster status`; never holds the password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("redis URL is not usable ({detail}); write it as rediss://USER:PASSWORD@HOST:6379/0")]
    Url { detail: String },
    #[error("redis {what}: {detail}")]
    Redis { what: String, detail: String },
    #[error("redis {what}: no reply within {0:?}", COMMAND_TIMEOUT)]
    Timeout { what: String },
    #[error("redis {what}: unexpected reply: {detail}")]
    Reply { what: String, detail: String },
    #[error("{0}")]
    Store(String),
}

impl BusError {
    pub(crate) fn redis(what: &str) -> impl Fn(redis::RedisError) -> BusError + '_ {
        move |e| {
            let mut detail = redact_userinfo(&e.to_string());
            if let Some(hint) = netban_core::config::redis_tls_hint(&detail) {
                detail = format!("{detail}; {hint}");
            }
            BusError::Redis {
                what: what.to_string(),
                detail,
            }
        }
    }

    pub(crate) fn reply(what: &str, detail: impl Into<String>) -> BusError {
        BusError::Reply {
            what: what.to_string(),
            detail: detail.into(),
        }
    }
}

impl From<netban_core::store::StoreError> for BusError {
    fn from(e: netban_core::store::StoreError) -> Self {
        BusError::Store(e.to_string())
    }
}

/// The client for `url`; installs rustls's ring provider for `rediss://` (once per process).
pub fn client(url: &Secret) -> Result<Client, BusError> {
    if url.expose().starts_with("rediss://") {
        // Another component (stats, a sink) may have installed it already: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    // The error of a bad URL may quote it: describe it without the URL.
    Client::open(url.expose()).map_err(|e| BusError::Url {
        detail: format!("{:?}", e.kind()),
    })
}

/// A new connection. `blocking`: no response timeout (for `XREAD BLOCK`); otherwise replies
/// are bounded by [`COMMAND_TIMEOUT`] too.
pub async fn connect(client: &Client, blocking: bool) -> Result<MultiplexedConnection, BusError> {
    let response = if blocking {
        None
    } else {
        Some(COMMAND_TIMEOUT)
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(response);
    match tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(r) => r.map_err(BusError::redis("connect")),
        Err(_) => Err(BusError::Timeout {
            what: "connect".into(),
        }),
    }
}

/// Runs one command (or pipeline) bounded by [`COMMAND_TIMEOUT`].
pub async fn bounded<T, F>(what: &str, fut: F) -> Result<T, BusError>
where
    F: std::future::Future<Output = redis::RedisResult<T>>,
{
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(r) => r.map_err(BusError::redis(what)),
        Err(_) => Err(BusError::Timeout {
            what: what.to_string(),
        }),
    }
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }
    pub fn stream(&self) -> String {
        format!("{}:bus:stream", self.prefix)
    }
    pub fn epoch(&self) -> String {
        format!("{}:bus:epoch", self.prefix)
    }
    pub fn mark(&self) -> String {
        format!("{}:bus:mark", self.prefix)
    }
    pub fn snapshot(&self, host: &str) -> String {
        format!("{}:bus:snap:{host}", self.prefix)
    }
    pub fn lock(&self, sink: &str) -> String {
        format!("{}:lock:{sink}", self.prefix)
    }
    pub fn lock_term(&self, sink: &str) -> String {
        format!("{}:lock:{sink}:term", self.prefix)
    }
    /// The hosts that ever held the lock (the hubs of the sink).
    pub fn lock_holders(&self, sink: &str) -> String {
        format!("{}:lock:{sink}:holders", self.prefix)
    }
}

/// The stream's epoch, made now if there is none (`SET NX`).
pub async fn epoch(conn: &mut MultiplexedConnection, keys: &Keys) -> Result<String, BusError> {
    let fresh = format!("{:016x}", fastrand::u64(..));
    let (current,): (Option<String>,) = bounded(
        "reading the stream epoch",
        redis::pipe()
            .cmd("SET")
            .arg(keys.epoch())
            .arg(&fresh)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(keys.epoch())
            .query_async(conn),
    )
    .await?;
    current.ok_or_else(|| BusError::reply("GET epoch", "no epoch right after SET NX"))
}

/// A stream entry id (`MS-SEQ`) as numbers, for comparing.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
