//! The publisher: this host's lease events from the outbox to the stream and its snapshot.
//!
//! It reads `Consumer::new("cluster")` (local-origin events only: peer leases are never
//! republished, so nothing loops) and the fleet-wide unbans waiting in `cluster_revokes`, in
//! the order they happened, signs each, and sends a batch as one `MULTI`: `XADD` to the
//! stream (trimmed with `MINID ~` to the retention), the matching `HSET` / `HDEL` on
//! `P:bus:snap:HOST`, and the new `P:bus:mark`. The outbox cursor is committed only after
//! Redis answered `EXEC`: while Redis is away the events wait in the outbox, and nothing is
//! lost or blocked. After a crash between `EXEC` and the commit, the mark in Redis tells the
//! publisher what was sent already.
//!
//! When the stream's epoch is new (first start, or a Redis that lost its data) the snapshot
//! is rebuilt from this host's live leases before anything else.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use netban_core::clock;
use netban_core::lease::Origin;
use netban_core::outbox::{Consumer, Event, EventKind};
use netban_core::store::{BusCursor, PeerMark, RevokeRequest};
use netban_core::{Lease, Until};
use redis::aio::MultiplexedConnection;

use super::{BusError, bounded, epoch, now_ms};
use crate::event::{Kind, PeerEvent};
use crate::node::Node;
use crate::reconnect::Reconnect;
use crate::sign::HostKey;
use crate::status::{Link, PUBLISHER_CONSUMER};

/// Events per `MULTI`.
pub const BATCH: usize = 500;
/// How often the outbox is looked at without a wake.
const POLL: Duration = Duration::from_secs(1);
/// Snapshot fields per `HSET` when rebuilding.
const REBUILD_CHUNK: usize = 1000;
/// The name under which the publisher remembers the epoch it built its snapshot for.
const PUBLISHER_BUS: &str = "publisher";
/// Published revokes are kept this long (for `explain`).
const KEEP_REVOKES: i64 = 7 * 86_400;

/// Publishes this host's events. Build it with [`crate::Cluster::publisher`].
pub struct Publisher {
    node: Arc<Node>,
}

/// One item to send, in order.
enum Item {
    Event(Event),
    Revoke(RevokeRequest),
}

impl Publisher {
    pub(crate) fn new(node: Arc<Node>) -> Publisher {
        Publisher { node }
    }

    /// Runs until `stop`; reconnects with backoff; wakes on [`crate::Cluster::wake`].
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut retry = Reconnect::new(Link::Publisher);
        loop {
            let mut connected = false;
            let r = tokio::select! {
                _ = &mut stop => return,
                r = self.session(&mut connected) => r,
            };
            let wait = retry.ended(&self.node.live, connected, r.err().map(|e| e.to_string()), |e| {
                format!("cluster: publishing to redis failed ({e}); bans wait in the outbox and go out when redis answers")
            });
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn session(&self, connected: &mut bool) -> Result<(), BusError> {
        let Some(client) = &self.node.client else {
            std::future::pending::<()>().await;
            return Ok(());
        };
        let Some(key) = self.node.key.clone() else {
            return Err(BusError::Store("no signing key".into()));
        };
        let mut conn = super::connect(client, false).await?;
        let my_epoch = self.node.db(|s| s.cluster_epoch(now_ms())).await?;
        // What Redis says was published already (a crash between EXEC and the commit).
        let mut sent = self.published_mark(&mut conn, my_epoch).await?;
        let mut built_for: Option<String> = self
            .node
            .db(|s| s.bus_cursor(PUBLISHER_BUS))
            .await?
            .map(|c| c.epoch);
        self.node.live.up(Link::Publisher);
        *connected = true;
        loop {
            let stream_epoch = epoch(&mut conn, &self.node.keys).await?;
            if built_for.as_deref() != Some(stream_epoch.as_str()) {
                self.rebuild(&mut conn, &key, my_epoch, &stream_epoch)
                    .await?;
                built_for = Some(stream_epoch);
                sent = self.published_mark(&mut conn, my_epoch).await?;
            }
            let n = self.batch(&mut conn, &key, my_epoch, &mut sent).await?;
            if n >= BATCH {
                continue;
            }
            tokio::select! {
                _ = self.node.wake_publisher.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn published_mark(
        &self,
        conn: &mut MultiplexedConnection,
        my_epoch: i64,
    ) -> Result<PeerMark, BusError> {
        let v: Option<String> = bounded(
            "reading this host's mark",
            redis::cmd("HGET")
                .arg(self.node.keys.mark())
                .arg(&self.node.host)
                .query_async(conn),
        )
        .await?;
        Ok(v.and_then(|v| parse_mark(&v))
            .filter(|m| m.epoch == my_epoch)
            .unwrap_or_default())
    }

    /// Sends the next batch; returns how many outbox events it covered.
    async fn batch(
        &self,
        conn: &mut MultiplexedConnection,
        key: &HostKey,
        my_epoch: i64,
        sent: &mut PeerMark,
    ) -> Result<usize, BusError> {
        let (events, revokes, cursor) = self
            .node
            .db(|s| {
                Ok((
                    Consumer::new(PUBLISHER_CONSUMER).next(s, BATCH)?,
                    s.pending_revokes(BATCH)?,
                    s.outbox_cursor(PUBLISHER_CONSUMER)?,
                ))
            })
            .await?;
        if events.is_empty() && revokes.is_empty() {
            return Ok(0);
        }
        let through = events.last().map_or(cursor, |e| e.id);
        let n = events.len();
        let mut items = Vec::with_capacity(events.len() + revokes.len());
        let mut rev = revokes.into_iter().peekable();
        for e in events {
            while let Some(r) = rev.next_if(|r| r.after_event < e.id) {
                items.push(Item::Revoke(r));
            }
            items.push(Item::Event(e));
        }
        // A revoke asked after `through` waits for the events before it.
        items.extend(rev.filter(|r| r.after_event <= through).map(Item::Revoke));
        let now = clock::now();
        let oldest = now - self.node.config.retention as i64;
        let snap = self.node.keys.snapshot(&self.node.host);
        let minid = format!(
            "{}-0",
            (now_ms() - self.node.config.retention as i64 * 1000).max(0)
        );
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut newest = *sent;
        let mut count = 0u64;
        let mut last_revoke = None;
        for item in &items {
            let Some(ev) = self.peer_event(item, my_epoch) else {
                continue;
            };
            if let Item::Revoke(r) = item {
                last_revoke = Some(r.id);
            }
            // Sent before a crash, or too old to matter to anybody.
            if ev.mark <= *sent || ev.at < oldest {
                continue;
            }
            let wire = ev.sign(key);
            pipe.cmd("XADD")
                .arg(self.node.keys.stream())
                .arg("MINID")
                .arg("~")
                .arg(&minid)
                .arg("*")
                .arg("e")
                .arg(&wire)
                .ignore();
            match ev.kind {
                Kind::Start => {
                    pipe.cmd("HSET")
                        .arg(&snap)
                        .arg(ev.snapshot_field())
                        .arg(&wire)
                        .ignore();
                }
                Kind::End => {
                    pipe.cmd("HDEL")
                        .arg(&snap)
                        .arg(ev.snapshot_field())
                        .ignore();
                }
                Kind::Revoke => {}
            }
            newest = newest.max(ev.mark);
            count += 1;
        }
        if count > 0 {
            pipe.cmd("HSET")
                .arg(self.node.keys.mark())
                .arg(&self.node.host)
                .arg(format_mark(newest))
                .ignore();
            bounded("publishing events", pipe.query_async::<()>(conn)).await?;
            *sent = newest;
            self.node.live.published(count);
        }
        self.node
            .db(move |s| {
                Consumer::new(PUBLISHER_CONSUMER).commit(s, through)?;
                if let Some(id) = last_revoke {
                    s.revokes_published(id, now - KEEP_REVOKES)?;
                }
                Ok(())
            })
            .await?;
        Ok(n)
    }

    /// The signed event for an outbox item; `None` for a peer's lease (never republished).
    fn peer_event(&self, item: &Item, my_epoch: i64) -> Option<PeerEvent> {
        Some(match item {
            Item::Event(e) => {
                if e.origin != Origin::Local.as_str() {
                    return None;
                }
                PeerEvent {
                    origin: self.node.host.clone(),
                    mark: PeerMark {
                        epoch: my_epoch,
                        seq: e.id,
                        sub: 0,
                    },
                    at: e.at,
                    kind: match e.kind {
                        EventKind::Start | EventKind::Extend => Kind::Start,
                        EventKind::End => Kind::End,
                    },
                    target: e.target,
                    jail: e.jail.clone(),
                    until: Until::from_db(e.until),
                    bantime: e.bantime,
                }
            }
            Item::Revoke(r) => PeerEvent {
                origin: self.node.host.clone(),
                mark: PeerMark {
                    epoch: my_epoch,
                    seq: r.after_event,
                    sub: r.id,
                },
                at: r.at,
                kind: Kind::Revoke,
                target: r.target,
                jail: "*".into(),
                until: Until::Never,
                bantime: 0,
            },
        })
    }

    /// Replaces the snapshot with this host's live leases, signed at the published position.
    async fn rebuild(
        &self,
        conn: &mut MultiplexedConnection,
        key: &HostKey,
        my_epoch: i64,
        stream_epoch: &str,
    ) -> Result<(), BusError> {
        let now = clock::now();
        let (leases, cursor) = self
            .node
            .db(move |s| {
                let leases: Vec<Lease> = s
                    .live_leases(now, None)?
                    .into_iter()
                    .filter(|l| l.origin == Origin::Local)
                    .collect();
                Ok((leases, s.outbox_cursor(PUBLISHER_CONSUMER)?))
            })
            .await?;
        let snap = self.node.keys.snapshot(&self.node.host);
        let mark = PeerMark {
            epoch: my_epoch,
            seq: cursor,
            sub: 0,
        };
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&snap).ignore();
        for chunk in leases.chunks(REBUILD_CHUNK) {
            let cmd = pipe.cmd("HSET").arg(&snap);
            for l in chunk {
                let ev = PeerEvent {
                    origin: self.node.host.clone(),
                    mark,
                    at: now,
                    kind: Kind::Start,
                    target: l.target,
                    jail: l.jail.clone(),
                    until: l.until,
                    bantime: l.bantime,
                };
                cmd.arg(ev.snapshot_field()).arg(ev.sign(key));
            }
            cmd.ignore();
        }
        pipe.cmd("HSET")
            .arg(self.node.keys.mark())
            .arg(&self.node.host)
            .arg(format_mark(mark))
            .ignore();
        bounded("rebuilding the snapshot", pipe.query_async::<()>(conn)).await?;
        let cur = BusCursor {
            stream_id: "-".into(),
            epoch: stream_epoch.to_string(),
        };
        self.node
            .db(move |s| s.save_cluster_progress(Some((PUBLISHER_BUS, &cur)), &[], now))
            .await?;
        tracing::info!(
            "cluster: snapshot of {} rebuilt in redis ({} live leases) for stream epoch {stream_epoch}",
            self.node.host,
            leases.len()
        );
        Ok(())
    }
}

pub(crate) fn format_mark(m: PeerMark) -> String {
    format!("{} {} {}", m.epoch, m.seq, m.sub)
}

pub(crate) fn parse_mark(s: &str) -> Option<PeerMark> {
    let mut it = s.split(' ').map(|x| x.parse::<i64>().ok());
    Some(PeerMark {
        epoch: it.next()??,
        seq: it.next()??,
        sub: it.next()??,
    })
}
