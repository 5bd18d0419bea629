//! The hub lock: one daemon at a time writes an `exclusive` sink (two hubs in front of one
//! ExaFS, one router).
//!
//! An *efficiency* lock on one Redis (reference/cluster.md): `SET key value NX PX ttl` with a
//! random value, renewed every third of the TTL by a Lua compare-and-`PEXPIRE`, released by a
//! Lua compare-and-`DEL`. Each acquisition also takes a *term* (`INCR P:lock:SINK:term`), a
//! fencing number for the logs: ExaFS and routers cannot check one, so safety does not rest
//! on the lock. It rests on the writes: reconcile is idempotent and repair removes
//! duplicates, so two writers at the same moment (a holder paused past its TTL, a Redis
//! failover) only cost duplicate work, never a lost rule.
//!
//! The holder also stops on its own: [`LockGate::may_write`] is true only until 80 % of the
//! TTL after the last renewal *sent*, so a holder that cannot reach Redis (or whose renewal
//! loop died) stops writing before the key can expire and another hub can take it.
//! The standby tries every third of the TTL, so it takes over within about 1.3 TTL of the
//! holder's death, and the runner, told by [`LockGate::changed`], starts with a full repair
//! pass.

use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::watch;

use crate::redis::{BusError, Keys};

static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
           redis.call('SADD', KEYS[3], ARGV[3]) \
           return redis.call('INCR', KEYS[2]) \
         end \
         return 0",
    )
});
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
         end \
         return 0",
    )
});
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('DEL', KEYS[1]) \
         end \
         return 0",
    )
});

/// What the gate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct View {
    /// The term while this host holds the lock.
    term: Option<u64>,
    /// Writes are safe until then.
    valid_until: Option<Instant>,
}

/// Asked by the sink's runner before each write. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LockGate {
    sink: String,
    rx: watch::Receiver<View>,
    hubs: Arc<Mutex<Vec<String>>>,
}

impl LockGate {
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// The other hosts that ever held this sink's lock (read at each acquisition): their
    /// entries on the sink are this holder's to keep, adopt and remove, as if its own.
    pub fn other_hubs(&self) -> Vec<String> {
        self.hubs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True while this host holds the lock and the last renewal is recent enough.
    pub fn may_write(&self) -> bool {
        let v = *self.rx.borrow();
        v.term.is_some() && v.valid_until.is_some_and(|t| Instant::now() < t)
    }

    /// Until when writes are safe without another renewal (`None`: not the holder). A pass
    /// over an exclusive sink should end its writes by then.
    pub fn valid_until(&self) -> Option<Instant> {
        self.may_write()
            .then(|| self.rx.borrow().valid_until)
            .flatten()
    }

    /// The term of the current holding (`None` when not the holder).
    pub fn term(&self) -> Option<u64> {
        self.may_write().then(|| self.rx.borrow().term).flatten()
    }

    /// Waits until the holding changes (taken or lost). A runner that sees a new term runs a
    /// full repair pass first.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The lock task ended: nothing will change any more.
            std::future::pending::<()>().await;
        }
    }

    /// Waits until this host holds the lock; returns the term.
    pub async fn holder(&mut self) -> u64 {
        loop {
            if let Some(t) = self.term() {
                return t;
            }
            self.changed().await;
        }
    }
}

/// Takes, keeps and releases the lock. Build it with [`crate::Cluster::hub_lock`].
pub struct HubLock {
    client: redis::Client,
    key: String,
    term_key: String,
    holders_key: String,
    host: String,
    hubs: Arc<Mutex<Vec<String>>>,
    token: String,
    sink: String,
    ttl: Duration,
    tx: watch::Sender<View>,
}

impl HubLock {
    pub(crate) fn new(
        client: redis::Client,
        keys: &Keys,
        sink: &str,
        host: &str,
        ttl: Duration,
    ) -> (HubLock, LockGate) {
        let (tx, rx) = watch::channel(View::default());
        let hubs = Arc::new(Mutex::new(Vec::new()));
        let lock = HubLock {
            client,
            key: keys.lock(sink),
            term_key: keys.lock_term(sink),
            holders_key: keys.lock_holders(sink),
            host: host.to_string(),
            hubs: hubs.clone(),
            token: format!("{host}:{:016x}", fastrand::u64(..)),
            sink: sink.to_string(),
            ttl,
            tx,
        };
        let gate = LockGate {
            sink: sink.to_string(),
            rx,
            hubs,
        };
        (lock, gate)
    }

    /// Runs until `stop`, then releases the lock if held.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let step = self.ttl / 3;
        let mut conn = None;
        loop {
            if let Err(e) = self.step(&mut conn).await {
                conn = None;
                tracing::debug!("cluster: hub lock of sink {}: {e}", self.sink);
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(step) => {}
            }
        }
        if self.tx.borrow().term.is_some()
            && let Ok(mut c) = crate::redis::connect(&self.client, false).await
        {
            let r: Result<i64, _> = crate::redis::bounded(
                "releasing the hub lock",
                RELEASE.key(&self.key).arg(&self.token).invoke_async(&mut c),
            )
            .await;
            if r.is_ok() {
                tracing::info!("cluster: hub lock of sink {} released", self.sink);
            }
        }
        self.tx.send_replace(View::default());
    }

    async fn step(
        &self,
        conn: &mut Option<redis::aio::MultiplexedConnection>,
    ) -> Result<(), BusError> {
        if conn.is_none() {
            *conn = Some(crate::redis::connect(&self.client, false).await?);
        }
        let Some(c) = conn.as_mut() else {
            return Ok(());
        };
        let ttl_ms = self.ttl.as_millis() as u64;
        let sent = Instant::now();
        let valid = sent + self.ttl.mul_f64(0.8);
        let held = self.tx.borrow().term;
        match held {
            Some(term) => {
                let r: i64 = crate::redis::bounded(
                    "renewing the hub lock",
                    RENEW
                        .key(&self.key)
                        .arg(&self.token)
                        .arg(ttl_ms)
                        .invoke_async(c),
                )
                .await?;
                if r == 1 {
                    self.tx.send_replace(View {
                        term: Some(term),
                        valid_until: Some(valid),
                    });
                } else {
                    tracing::warn!(
                        "cluster: hub lock of sink {} lost (term {term}): another hub holds it now; this one stops writing the sink",
                        self.sink
                    );
                    self.tx.send_replace(View::default());
                }
            }
            None => {
                let term: u64 = crate::redis::bounded(
                    "taking the hub lock",
                    ACQUIRE
                        .key(&self.key)
                        .key(&self.term_key)
                        .key(&self.holders_key)
                        .arg(&self.token)
                        .arg(ttl_ms)
                        .arg(&self.host)
                        .invoke_async(c),
                )
                .await?;
                if term > 0 {
                    let members: Vec<String> = crate::redis::bounded(
                        "reading the hub lock's holders",
                        redis::cmd("SMEMBERS").arg(&self.holders_key).query_async(c),
                    )
                    .await
                    .unwrap_or_default();
                    *self.hubs.lock().unwrap_or_else(|p| p.into_inner()) = members
                        .into_iter()
                        .filter(|h| *h != self.host)
                        .take(64)
                        .collect();
                    tracing::info!(
                        "cluster: hub lock of sink {} taken (term {term}); starting with a full repair pass",
                        self.sink
                    );
                    self.tx.send_replace(View {
                        term: Some(term),
                        valid_until: Some(valid),
                    });
                }
            }
        }
        Ok(())
    }
}
