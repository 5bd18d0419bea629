//! The cluster's metrics, brought up to date from its status at each scrape:
//!
//! - `netban_cluster_events_total{peer,result}`: events received per origin, by what became
//!   of them (`accepted`, `bad_signature`, `replay`, `rate`, `cap`, `guard`, ...);
//! - `netban_cluster_peer_leases{peer}`: live leases of each origin here;
//! - `netban_cluster_peer_last_event_timestamp_seconds{peer}`: the origin's time of the
//!   newest event taken;
//! - `netban_cluster_bus_up{link}`: 1 while `publisher`, `receiver`, `fanout` is connected;
//! - `netban_cluster_publish_backlog`: this host's events waiting to be published;
//! - `netban_cluster_published_total`: events published since the daemon started;
//! - `netban_cluster_stream_lag_seconds`: how far the receiver's cursor is behind the
//!   stream's head (0 once caught up);
//! - `netban_cluster_lock_held{sink}`: 1 while this host holds an exclusive sink's lock.
//!
//! Peers are the trusted hosts of `[cluster.peers]`, `fanout` and `(untrusted)`: a bounded
//! set, never a name a sender made up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use netban_cluster::{ClusterStatus, Verdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerResult {
    peer: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Peer {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Link {
    link: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Sink {
    sink: String,
}

pub struct ClusterMetrics {
    events: Family<PeerResult, Counter>,
    /// The totals last exported (the store keeps totals; counters export the growth).
    seen: Mutex<HashMap<PeerResult, u64>>,
    peer_leases: Family<Peer, Gauge>,
    peer_last_event: Family<Peer, Gauge>,
    bus_up: Family<Link, Gauge>,
    backlog: Gauge,
    published: Counter,
    published_seen: AtomicU64,
    stream_lag: Gauge<f64, AtomicU64>,
    lock_held: Family<Sink, Gauge>,
}

impl ClusterMetrics {
    pub fn register(registry: &mut Registry) -> ClusterMetrics {
        let m = ClusterMetrics {
            events: Family::default(),
            seen: Mutex::default(),
            peer_leases: Family::default(),
            peer_last_event: Family::default(),
            bus_up: Family::default(),
            backlog: Gauge::default(),
            published: Counter::default(),
            published_seen: AtomicU64::new(0),
            stream_lag: Gauge::default(),
            lock_held: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("cluster");
        r.register(
            "events",
            "Cluster events received per origin, by what became of them",
            m.events.clone(),
        );
        r.register(
            "peer_leases",
            "Live leases of each origin here",
            m.peer_leases.clone(),
        );
        r.register(
            "peer_last_event_timestamp_seconds",
            "The origin's time of the newest event taken from it",
            m.peer_last_event.clone(),
        );
        r.register(
            "bus_up",
            "1 while the link (publisher, receiver, fanout) is connected",
            m.bus_up.clone(),
        );
        r.register(
            "publish_backlog",
            "This host's events waiting to be published",
            m.backlog.clone(),
        );
        r.register(
            "published",
            "Events published since the daemon started",
            m.published.clone(),
        );
        r.register(
            "stream_lag_seconds",
            "How far the receiver's cursor is behind the stream's head, in seconds (0 once caught up)",
            m.stream_lag.clone(),
        );
        r.register(
            "lock_held",
            "1 while this host holds the exclusive sink's lock",
            m.lock_held.clone(),
        );
        m
    }

    pub fn update(&self, s: &ClusterStatus) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for p in &s.peers {
            for v in Verdict::COUNTED {
                let total = p.counts.get(v);
                let label = PeerResult {
                    peer: p.host.clone(),
                    result: v.as_str().to_string(),
                };
                let before = seen.insert(label.clone(), total).unwrap_or(0);
                if total > before {
                    self.events.get_or_create(&label).inc_by(total - before);
                } else if total > 0 {
                    // Exported even when unchanged, so a series exists once it counted.
                    let _ = self.events.get_or_create(&label);
                }
            }
            let peer = Peer {
                peer: p.host.clone(),
            };
            self.peer_leases.get_or_create(&peer).set(p.leases);
            if let Some(t) = p.last_event {
                self.peer_last_event.get_or_create(&peer).set(t);
            }
        }
        let up = |name: &str, on: bool| {
            self.bus_up
                .get_or_create(&Link {
                    link: name.to_string(),
                })
                .set(i64::from(on));
        };
        if let Some(b) = &s.bus {
            up("publisher", b.publisher.connected);
            up("receiver", b.receiver.connected);
            self.backlog.set(b.publish_lag);
            let before = self
                .published_seen
                .swap(b.published, std::sync::atomic::Ordering::Relaxed);
            if b.published > before {
                self.published.inc_by(b.published - before);
            }
            self.stream_lag.set(b.lag_seconds.unwrap_or(0.0));
        }
        if let Some(f) = &s.fanout {
            up("fanout", f.connected);
        }
        for (sink, held) in &s.locks {
            self.lock_held
                .get_or_create(&Sink { sink: sink.clone() })
                .set(i64::from(*held));
        }
    }
}
