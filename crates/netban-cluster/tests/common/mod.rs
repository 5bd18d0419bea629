//! Hosts of a test fleet in one process: each its own state directory and store, its own
//! cluster (publisher and receiver tasks), all on one real redis-server from the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netban_cluster::event::{Kind, PeerEvent};
use netban_cluster::{Cluster, ClusterConfig, HostKey, Setup};
use netban_core::clock;
use netban_core::config::{GuardConfig, Secret};
use netban_core::guard::Guard;
use netban_core::lease::Origin;
use netban_core::leases::{self, BanRequest};
use netban_core::outbox::Cause;
use netban_core::store::{LeaseFacts, PeerMark, Store};
use netban_core::{Target, Until};
use tokio::sync::watch;

/// A deterministic key per host name.
pub fn key_of(host: &str) -> HostKey {
    let mut seed = [0u8; 32];
    for (i, b) in host.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    seed[31] ^= 0x5a;
    HostKey::from_seed(seed)
}

/// `[cluster]` for a fleet of `hosts` on `url`, every host trusting every other.
pub fn config(url: &str, hosts: &[&str]) -> ClusterConfig {
    let mut peers = BTreeMap::new();
    for h in hosts {
        peers.insert(h.to_string(), key_of(h).public().to_string());
    }
    ClusterConfig {
        redis: Some(Secret::new(url)),
        key_file: "/nonexistent/cluster.key".into(),
        peers,
        ..ClusterConfig::default()
    }
}

pub fn guard(allow: &[&str]) -> Guard {
    Guard::new(
        &GuardConfig {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            protect_own_addresses: false,
            ..GuardConfig::default()
        },
        None,
    )
}

pub fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

/// One host.
pub struct Host {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub cluster: Cluster,
    pub changes: Arc<AtomicU64>,
    stop: Option<watch::Sender<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn stop_future(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Host {
    pub fn new(name: &str, config: ClusterConfig) -> Host {
        Host::with_guard(name, config, guard(&[]))
    }

    pub fn with_guard(name: &str, config: ClusterConfig, g: Guard) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("state")).unwrap());
        Host::on(name, config, g, dir, store)
    }

    fn on(
        name: &str,
        config: ClusterConfig,
        g: Guard,
        dir: tempfile::TempDir,
        store: Arc<Store>,
    ) -> Host {
        let changes = Arc::new(AtomicU64::new(0));
        let c = changes.clone();
        let mut setup = Setup::new(
            config,
            name,
            store.clone(),
            Arc::new(move || g.clone()),
            Arc::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }),
        );
        setup.key = Some(key_of(name));
        let cluster = Cluster::new(setup).unwrap();
        Host {
            name: name.to_string(),
            dir,
            store,
            cluster,
            changes,
            stop: None,
            tasks: Vec::new(),
        }
    }

    /// The same state directory with another config (a restart after an edit).
    pub fn reconfigure(mut self, config: ClusterConfig, g: Guard) -> Host {
        self.kill();
        let name = self.name.clone();
        let store = self.store.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Host::on(&name, config, g, dir, store)
    }

    /// Starts the publisher and the receiver.
    pub fn start(&mut self) {
        let (tx, rx) = watch::channel(false);
        if let Some(p) = self.cluster.publisher() {
            self.tasks.push(tokio::spawn(p.run(stop_future(&rx))));
        }
        if let Some(r) = self.cluster.receiver() {
            self.tasks.push(tokio::spawn(r.run(stop_future(&rx))));
        }
        if let Some(f) = self.cluster.fanout() {
            self.tasks.push(tokio::spawn(f.run(stop_future(&rx))));
        }
        self.stop = Some(tx);
    }

    /// Waits until the publisher and the receiver are connected (and the receiver past its
    /// first snapshot check), so that what follows arrives over the stream.
    pub async fn settle(&self) {
        wait_until(
            Duration::from_secs(15),
            &format!("{} connected", self.name),
            || {
                let st = self.cluster.status().unwrap();
                st.bus
                    .is_some_and(|b| b.publisher.connected && b.receiver.connected)
            },
        )
        .await;
    }

    /// Stops like kill -9: the tasks end where they are.
    pub fn kill(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.stop = None;
    }

    pub fn ban(&self, ip: &str, jail: &str) {
        self.ban_for(ip, jail, 3600);
    }

    pub fn ban_for(&self, ip: &str, jail: &str, bantime: i64) {
        let now = clock::now();
        let req = BanRequest {
            target: t(ip),
            jail: jail.into(),
            origin: Origin::Local,
            until: if bantime < 0 {
                Until::Never
            } else {
                Until::At(now + bantime)
            },
            bantime,
            since: now,
            facts: LeaseFacts::cause(Cause::Ban),
        };
        leases::ban(&self.store, &guard(&[]), &req, now).unwrap();
        self.cluster.wake();
    }

    pub fn unban(&self, ip: &str, jail: &str) {
        leases::unban(&self.store, &t(ip), Some(jail), clock::now()).unwrap();
        self.cluster.wake();
    }

    /// Live leases of `origin` here, as `TARGET JAIL`, sorted.
    pub fn leases_from(&self, origin: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .store
            .live_leases(clock::now(), None)
            .unwrap()
            .into_iter()
            .filter(|l| l.origin.as_str() == origin)
            .map(|l| format!("{} {}", l.target, l.jail))
            .collect();
        v.sort();
        v
    }

    /// This host's local live leases as `TARGET JAIL`, sorted.
    pub fn local(&self) -> Vec<String> {
        self.leases_from("local")
    }

    /// Count of events from `origin` that ended with `cause`.
    pub fn count(&self, origin: &str, cause: &str) -> i64 {
        self.store
            .peer_counts()
            .unwrap()
            .into_iter()
            .find(|(o, c, _)| o == origin && c == cause)
            .map_or(0, |(_, _, n)| n)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `f` holds, up to `limit`; panics with `what` otherwise.
pub async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A signed event of `origin` (for forgeries and replays).
pub fn event(origin: &str, seq: i64, at: i64, target: &str) -> PeerEvent {
    PeerEvent {
        origin: origin.into(),
        mark: PeerMark {
            epoch: 1,
            seq,
            sub: 0,
        },
        at,
        kind: Kind::Start,
        target: t(target),
        jail: "sshd".into(),
        until: Until::At(at + 3600),
        bantime: 3600,
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NETBAN_TEST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
