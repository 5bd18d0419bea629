//! The receiver: peers' events from the stream into leases here.
//!
//! It reads with `XREAD BLOCK` on its own connection (no response timeout) from the cursor
//! kept in the state database, so a host that was down resumes where it stopped. Each page
//! of entries (up to [`BATCH`], what one `XREAD` returns, live or catching up) is checked
//! (decoding, signatures: on several threads, before the write lock), then goes through
//! [`Admission`] in stream order in ONE transaction that also saves the cursor after the
//! page's last entry, the marks and the counts; then `on_change` wakes the sinks. A crash
//! mid-page commits nothing of it: the page is read again from the old cursor, against the
//! old marks, and applied once.
//!
//! Before reading, and every [`CHECK_EVERY`] while idle, it checks that nothing was lost:
//! - the stream's epoch is the one its cursor belongs to (else Redis lost its data, or this
//!   host is new);
//! - its cursor is not below the stream's first entry (`XINFO STREAM`; else entries it never
//!   read may have been trimmed: redis 7.0 does not move `max-deleted-entry-id` when it
//!   trims, only on `XDEL`, which is checked too). A host idle for longer than the retention
//!   resyncs needlessly once; that is the price of never missing a trimmed entry.
//!
//! It knows the stream's head, for the lag in `netban cluster status` and
//! `netban_cluster_stream_lag_seconds`, without a read per event: it reads the head
//! (`XREVRANGE + - COUNT 1`) when a session starts and at most once every [`HEAD_EVERY`]
//! while `XREAD` returns full pages (catching up); a short page or an empty read says it is at
//! the head.
//!
//! Either way it reloads the snapshot of every trusted peer, taken in one `MULTI` with the
//! stream's newest entry id, makes its leases from each peer exactly that peer's snapshot,
//! and continues from that id. A peer whose snapshot is not there yet (no `P:bus:mark`, e.g.
//! its publisher has not run since Redis came back) keeps its leases here as they are, and
//! its snapshot is loaded as soon as it appears.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netban_core::clock;
use netban_core::store::BusCursor;
use redis::Value;
use redis::aio::MultiplexedConnection;

use super::reply::{self, Entry};
use super::{BusError, bounded, epoch};
use crate::node::Node;
use crate::receive::{Admission, PER_TRANSACTION};
use crate::reconnect::{RECONNECT, Reconnect};
use crate::status::{Link, RECEIVER_CURSOR};

/// Entries per `XREAD`: one page, applied in one transaction.
pub const BATCH: usize = PER_TRANSACTION;
/// How long one `XREAD` blocks.
const BLOCK: Duration = Duration::from_secs(5);
/// How often the epoch and missing snapshots are checked while idle.
const CHECK_EVERY: Duration = Duration::from_secs(15);
/// How often, at most, the stream's head is read while catching up.
const HEAD_EVERY: Duration = Duration::from_secs(1);

/// Receives peers' events. Build it with [`crate::Cluster::receiver`].
pub struct Receiver {
    node: Arc<Node>,
}

/// What a session keeps between batches.
struct Session {
    conn: MultiplexedConnection,
    cursor: BusCursor,
    /// Trusted peers whose snapshot is still to load.
    pending: BTreeSet<String>,
    /// When the stream's head was last read.
    head_read: Instant,
}

impl Receiver {
    pub(crate) fn new(node: Arc<Node>) -> Receiver {
        Receiver { node }
    }

    /// Runs until `stop`; reconnects with backoff.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let admission = {
            let node = self.node.clone();
            let mut attempt = 0;
            loop {
                let n = node.clone();
                let r = node
                    .db(move |s| {
                        Admission::new(&n.config, &n.host, n.trust.clone(), s, clock::now())
                    })
                    .await;
                match r {
                    Ok(a) => break Arc::new(Mutex::new(a)),
                    Err(e) => {
                        attempt += 1;
                        tracing::warn!("cluster: cannot read the peers' state ({e}); trying again");
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(RECONNECT.delay(attempt)) => {}
                        }
                    }
                }
            }
        };
        let mut retry = Reconnect::new(Link::Receiver);
        loop {
            let mut connected = false;
            let r = tokio::select! {
                _ = &mut stop => return,
                r = self.session(&admission, &mut connected) => r,
            };
            let wait = retry.ended(&self.node.live, connected, r.err().map(|e| e.to_string()), |e| {
                format!("cluster: reading the bus failed ({e}); peers' bans arrive when redis answers again")
            });
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn session(
        &self,
        admission: &Arc<Mutex<Admission>>,
        connected: &mut bool,
    ) -> Result<(), BusError> {
        let Some(client) = &self.node.client else {
            std::future::pending::<()>().await;
            return Ok(());
        };
        let mut conn = super::connect(client, true).await?;
        let stream_epoch = epoch(&mut conn, &self.node.keys).await?;
        let stored = self.node.db(|s| s.bus_cursor(RECEIVER_CURSOR)).await?;
        *connected = true;
        let mut s = Session {
            conn,
            cursor: BusCursor {
                stream_id: "0-0".into(),
                epoch: stream_epoch.clone(),
            },
            pending: BTreeSet::new(),
            head_read: Instant::now(),
        };
        match stored {
            Some(c) if c.epoch == stream_epoch && !self.gap(&mut s.conn, &c.stream_id).await? => {
                s.cursor = c;
            }
            Some(c) => {
                let why = if c.epoch != stream_epoch {
                    "redis lost its data or is another server (new stream epoch)"
                } else {
                    "events it missed were trimmed from the stream (retention)"
                };
                tracing::warn!("cluster: resyncing from the peers' snapshots: {why}");
                self.resync(&mut s, admission, None).await?;
            }
            None => {
                tracing::info!("cluster: first start on this bus; loading the peers' snapshots");
                self.resync(&mut s, admission, None).await?;
            }
        }
        // How far behind it starts (a host that was down, or a session after a failed page).
        self.read_head(&mut s).await?;
        // Connected, and the cursor is good: receiving.
        self.node.live.up(Link::Receiver);
        let mut checked = Instant::now();
        loop {
            let reply: Value = match tokio::time::timeout(
                BLOCK + super::COMMAND_TIMEOUT,
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(BATCH)
                    .arg("BLOCK")
                    .arg(BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(self.node.keys.stream())
                    .arg(&s.cursor.stream_id)
                    .query_async(&mut s.conn),
            )
            .await
            {
                Ok(r) => r.map_err(BusError::redis("XREAD"))?,
                Err(_) => {
                    return Err(BusError::Timeout {
                        what: "XREAD".into(),
                    });
                }
            };
            let entries = reply::xread(&reply);
            self.note_head(&mut s, &entries).await?;
            if !entries.is_empty() {
                self.apply(&mut s, admission, entries).await?;
            }
            if checked.elapsed() >= CHECK_EVERY {
                checked = Instant::now();
                let now_epoch = epoch(&mut s.conn, &self.node.keys).await?;
                if now_epoch != s.cursor.epoch {
                    tracing::warn!(
                        "cluster: resyncing from the peers' snapshots: redis lost its data (new stream epoch)"
                    );
                    s.cursor.epoch = now_epoch;
                    self.resync(&mut s, admission, None).await?;
                } else if !s.pending.is_empty() {
                    let pending: Vec<String> = s.pending.iter().cloned().collect();
                    self.resync(&mut s, admission, Some(pending)).await?;
                }
            }
        }
    }

    /// Reads the stream's newest entry id (`0-0` while there is no stream).
    async fn read_head(&self, s: &mut Session) -> Result<(), BusError> {
        let reply: Value = bounded(
            "reading the stream's head",
            redis::cmd("XREVRANGE")
                .arg(self.node.keys.stream())
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut s.conn),
        )
        .await?;
        let head = reply::entries(&reply)
            .first()
            .map_or_else(|| "0-0".to_string(), |e| e.id.clone());
        self.node.live.stream_head(&head);
        s.head_read = Instant::now();
        Ok(())
    }

    /// What one `XREAD` says of the head: a short page (or none) ends at the head; after a
    /// full page there may be more, and the head is read again once [`HEAD_EVERY`] passed.
    async fn note_head(&self, s: &mut Session, entries: &[Entry]) -> Result<(), BusError> {
        match entries.last() {
            None => self.node.live.stream_head(&s.cursor.stream_id),
            Some(last) if entries.len() < BATCH => self.node.live.stream_head(&last.id),
            Some(_) if s.head_read.elapsed() >= HEAD_EVERY => self.read_head(s).await?,
            Some(last) => self.node.live.stream_head_at_least(&last.id),
        }
        Ok(())
    }

    /// True when entries after `cursor` were trimmed before this host read them.
    async fn gap(&self, conn: &mut MultiplexedConnection, cursor: &str) -> Result<bool, BusError> {
        let r: redis::RedisResult<Value> = tokio::time::timeout(
            super::COMMAND_TIMEOUT,
            redis::cmd("XINFO")
                .arg("STREAM")
                .arg(self.node.keys.stream())
                .query_async(conn),
        )
        .await
        .map_err(|_| BusError::Timeout {
            what: "XINFO STREAM".into(),
        })?;
        let info = match r {
            Ok(v) => v,
            // No stream yet: nothing can have been trimmed.
            Err(e) if e.to_string().contains("no such key") => return Ok(false),
            Err(e) => return Err(BusError::redis("XINFO STREAM")(e)),
        };
        // redis 7.0 moves max-deleted-entry-id on XDEL only, not when XADD MINID / XTRIM
        // trims: a trimmed entry shows as a first entry above the cursor. Nothing was ever
        // removed when every entry added is still there.
        let field = |f: &str| reply::info_field(&info, f);
        let num = |f: &str| field(f).and_then(|v| v.parse::<u64>().ok());
        if let (Some(len), Some(added)) = (num("length"), num("entries-added"))
            && len == added
        {
            return Ok(false);
        }
        let Some(c) = super::parse_id(cursor) else {
            return Ok(true);
        };
        let below = |f: &str| {
            field(f)
                .as_deref()
                .and_then(super::parse_id)
                .is_some_and(|id| c < id)
        };
        Ok(below("recorded-first-entry-id") || below("max-deleted-entry-id"))
    }

    /// Loads the snapshots of `only` (default: every trusted peer) with the stream position
    /// taken in the same `MULTI`; continues from there when it was a full resync.
    async fn resync(
        &self,
        s: &mut Session,
        admission: &Arc<Mutex<Admission>>,
        only: Option<Vec<String>>,
    ) -> Result<(), BusError> {
        let full = only.is_none();
        let peers: Vec<String> = match only {
            Some(p) => p,
            None => self.node.trust.hosts(),
        }
        .into_iter()
        .filter(|p| *p != self.node.host)
        .collect();
        let keys = &self.node.keys;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(keys.epoch())
            .cmd("XREVRANGE")
            .arg(keys.stream())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .cmd("HMGET")
            .arg(keys.mark())
            .arg("-");
        for p in &peers {
            pipe.arg(p);
        }
        for p in &peers {
            pipe.cmd("HGETALL").arg(keys.snapshot(p));
        }
        let replies: Vec<Value> =
            bounded("reading the snapshots", pipe.query_async(&mut s.conn)).await?;
        if replies.len() != 3 + peers.len() {
            return Err(BusError::reply(
                "reading the snapshots",
                format!("{} replies for {} commands", replies.len(), 3 + peers.len()),
            ));
        }
        let epoch_now = reply::text(&replies[0]).unwrap_or_default();
        let last_id = reply::entries(&replies[1])
            .first()
            .map_or_else(|| "0-0".to_string(), |e| e.id.clone());
        let marks: Vec<bool> = match &replies[2] {
            Value::Array(v) => v.iter().skip(1).map(|m| !matches!(m, Value::Nil)).collect(),
            _ => Vec::new(),
        };
        let mut loads = Vec::new();
        for (i, p) in peers.iter().enumerate() {
            if marks.get(i).copied().unwrap_or(false) {
                loads.push((p.clone(), reply::hash_values(&replies[3 + i])));
                s.pending.remove(p);
            } else {
                if !s.pending.contains(p) {
                    tracing::info!(
                        "cluster: no snapshot of {p} in redis yet; keeping its leases here until it publishes"
                    );
                }
                s.pending.insert(p.clone());
            }
        }
        if full {
            s.cursor = BusCursor {
                stream_id: last_id.clone(),
                epoch: epoch_now,
            };
        }
        self.node.live.stream_head(&last_id);
        s.head_read = Instant::now();
        let node = self.node.clone();
        let adm = admission.clone();
        let cursor = s.cursor.clone();
        let changed = self
            .node
            .db(move |store| {
                let guard = (node.guard)();
                let now = clock::now();
                let mut a = adm.lock().unwrap_or_else(|p| p.into_inner());
                a.load_snapshots(store, &guard, &loads, (RECEIVER_CURSOR, &cursor), now)
            })
            .await?;
        if changed {
            (self.node.on_change)();
        }
        Ok(())
    }

    /// Takes a batch of entries and saves the cursor after the last one.
    async fn apply(
        &self,
        s: &mut Session,
        admission: &Arc<Mutex<Admission>>,
        entries: Vec<Entry>,
    ) -> Result<(), BusError> {
        let Some(last) = entries.last().map(|e| e.id.clone()) else {
            return Ok(());
        };
        let cursor = BusCursor {
            stream_id: last.clone(),
            epoch: s.cursor.epoch.clone(),
        };
        let node = self.node.clone();
        let adm = admission.clone();
        let saved = cursor.clone();
        let changed = self
            .node
            .db(move |store| {
                let guard = (node.guard)();
                let now = clock::now();
                let mut a = adm.lock().unwrap_or_else(|p| p.into_inner());
                let wires: Vec<Option<&[u8]>> =
                    entries.iter().map(|e| e.event.as_deref()).collect();
                a.take_page(store, &guard, &wires, (RECEIVER_CURSOR, &saved), now)
            })
            .await?;
        s.cursor = cursor;
        if changed {
            (self.node.on_change)();
        }
        Ok(())
    }
}
