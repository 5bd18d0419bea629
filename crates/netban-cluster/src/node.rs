//! The [`Cluster`]: what the daemon builds once from `[cluster]` and wires as components.
//!
//! ```ignore
//! let cluster = Cluster::new(Setup::new(config, &host_id, store, guard, on_change))?;
//! tokio::spawn(cluster.publisher().run(stop_a));   // local outbox events -> Redis
//! tokio::spawn(cluster.receiver().run(stop_b));    // Redis -> peer leases here
//! if let Some(f) = cluster.fanout() { tokio::spawn(f.run(stop_c)); }
//! let (lock, gate) = cluster.hub_lock("exafs")?;  // per exclusive sink
//! cluster.wake();                                  // on every EventsAppended
//! let report = cluster.status()?;                  // netban cluster status, /metrics
//! ```
//!
//! Each part runs until its stop future resolves, reconnects on its own with backoff, and
//! never blocks a ban: the outbox is the buffer while Redis (or the fanout server) is away.
//! `on_change` is called whenever peer leases changed here, so the daemon wakes its sink
//! runners; `guard` gives the guard as it is now (allowlists are re-read on change).

use std::sync::{Arc, Mutex};

use netban_core::config::{Secret, redact_userinfo};
use netban_core::guard::Guard;
use netban_core::store::{Store, StoreError};
use tokio::sync::Notify;

use crate::config::ClusterConfig;
use crate::fanout::Fanout;
use crate::lock::{HubLock, LockGate};
use crate::redis::publish::Publisher;
use crate::redis::receive::Receiver;
use crate::redis::{BusError, Keys};
use crate::sign::{HostKey, KeyError, Trust};
use crate::status::{ClusterStatus, Live};

/// The guard as it is now.
pub type GuardFn = Arc<dyn Fn() -> Guard + Send + Sync>;
/// Called when peer leases changed here.
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

/// Why the cluster cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Config(#[from] crate::config::ClusterConfigError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("cluster: {0}")]
    Store(#[from] StoreError),
    #[error("cluster: {0}")]
    Other(String),
}

/// What [`Cluster::new`] needs.
pub struct Setup {
    pub config: ClusterConfig,
    /// This host's id (`host_id`): the origin of its events.
    pub host_id: String,
    pub store: Arc<Store>,
    pub guard: GuardFn,
    pub on_change: OnChange,
    /// The signing key; `None`: read `key_file` (when a Redis bus is configured).
    pub key: Option<HostKey>,
}

impl Setup {
    pub fn new(
        config: ClusterConfig,
        host_id: &str,
        store: Arc<Store>,
        guard: GuardFn,
        on_change: OnChange,
    ) -> Setup {
        Setup {
            config,
            host_id: host_id.to_string(),
            store,
            guard,
            on_change,
            key: None,
        }
    }
}

/// Shared by the parts of one host's cluster.
pub(crate) struct Node {
    pub config: ClusterConfig,
    pub host: String,
    pub store: Arc<Store>,
    pub guard: GuardFn,
    pub on_change: OnChange,
    pub key: Option<HostKey>,
    pub trust: Trust,
    pub keys: Keys,
    pub client: Option<redis::Client>,
    /// The Redis URL with its credentials redacted, for status.
    pub url_shown: Option<String>,
    pub live: Live,
    pub wake_publisher: Notify,
    pub wake_fanout: Notify,
    pub locks: Mutex<Vec<LockGate>>,
}

impl Node {
    /// Runs `f` on the store on a blocking thread (SQLite may wait for another process).
    pub async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Task(format!("cluster store task failed: {e}"))))
    }
}

/// One host's cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    node: Arc<Node>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("host", &self.node.host)
            .field("bus", &self.node.url_shown)
            .finish()
    }
}

impl Cluster {
    /// Validates the config, loads the key (when a Redis bus is configured) and prepares the
    /// client. Connects nothing: the parts connect when they run.
    pub fn new(setup: Setup) -> Result<Cluster, ClusterError> {
        let Setup {
            config,
            host_id,
            store,
            guard,
            on_change,
            key,
        } = setup;
        config.validate()?;
        let (client, url_shown, key) = if config.has_redis() {
            let url: Secret = config.redis_url()?;
            let client = crate::redis::client(&url)?;
            let key = match key {
                Some(k) => k,
                None => HostKey::load(&config.key_file)?,
            };
            (Some(client), Some(redact_userinfo(url.expose())), Some(key))
        } else {
            (None, None, key)
        };
        let trust = Trust::from_peers(&config.peers);
        if config.peers.contains_key(&host_id) {
            tracing::debug!(
                "cluster: {host_id} is in its own [cluster.peers]; its own events are skipped"
            );
        }
        let keys = Keys::new(&config.prefix);
        Ok(Cluster {
            node: Arc::new(Node {
                config,
                host: host_id,
                store,
                guard,
                on_change,
                key,
                trust,
                keys,
                client,
                url_shown,
                live: Live::default(),
                wake_publisher: Notify::new(),
                wake_fanout: Notify::new(),
                locks: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn host_id(&self) -> &str {
        &self.node.host
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.node.config
    }

    /// The publisher (`None` without a Redis bus).
    pub fn publisher(&self) -> Option<Publisher> {
        self.node.client.as_ref()?;
        Some(Publisher::new(self.node.clone()))
    }

    /// The receiver (`None` without a Redis bus).
    pub fn receiver(&self) -> Option<Receiver> {
        self.node.client.as_ref()?;
        Some(Receiver::new(self.node.clone()))
    }

    /// The fanout bridge (`None` unless `[cluster.fanout]` is present).
    pub fn fanout(&self) -> Option<Fanout> {
        let cfg = self.node.config.fanout.clone()?;
        Some(Fanout::new(self.node.clone(), cfg))
    }

    /// The hub lock of an `exclusive` sink: run the [`HubLock`], ask the [`LockGate`].
    pub fn hub_lock(&self, sink: &str) -> Result<(HubLock, LockGate), ClusterError> {
        let Some(client) = &self.node.client else {
            return Err(ClusterError::Other(format!(
                "sink {sink:?} is exclusive, which needs the Redis bus: set [cluster] redis"
            )));
        };
        let (lock, gate) = HubLock::new(
            client.clone(),
            &self.node.keys,
            sink,
            &self.node.host,
            self.node.config.lock_ttl(),
        );
        self.node
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(gate.clone());
        Ok((lock, gate))
    }

    /// New events are in the outbox: the publisher and the fanout announcer look now.
    pub fn wake(&self) {
        self.node.wake_publisher.notify_one();
        self.node.wake_fanout.notify_one();
    }

    /// For `netban check`: reaches Redis (`PING`, the stream's length) and the fanout server
    /// (a TCP connect). Says what it found; errors say what failed.
    pub async fn check(&self) -> Result<String, ClusterError> {
        let mut out = Vec::new();
        if let Some(client) = &self.node.client {
            let mut c = crate::redis::connect(client, false).await?;
            let _: String =
                crate::redis::bounded("PING", redis::cmd("PING").query_async(&mut c)).await?;
            let len: i64 = crate::redis::bounded(
                "XLEN",
                redis::cmd("XLEN")
                    .arg(self.node.keys.stream())
                    .query_async(&mut c),
            )
            .await?;
            out.push(format!(
                "redis {} answers; the stream holds {len} events; {} trusted peers",
                self.node.url_shown.as_deref().unwrap_or("?"),
                self.node.trust.hosts().len()
            ));
        }
        if let Some(f) = &self.node.config.fanout {
            tokio::time::timeout(
                std::time::Duration::from_secs(3),
                tokio::net::TcpStream::connect(&f.server),
            )
            .await
            .map_err(|_| {
                ClusterError::Other(format!("fanout server {}: connect timed out", f.server))
            })?
            .map_err(|e| ClusterError::Other(format!("fanout server {}: {e}", f.server)))?;
            out.push(format!(
                "fanout server {} accepts connections (messages are unsigned)",
                f.server
            ));
        }
        Ok(out.join("; "))
    }

    /// What `netban cluster status` prints. Reads the store: call it off the async threads.
    pub fn status(&self) -> Result<ClusterStatus, StoreError> {
        crate::status::collect(&self.node)
    }
}
